package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/creds"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/internal/strictjson"
	"github.com/camgate/camgate/links"
)

// AdmitBasic admits an RTSP viewer that sent a stream credential's
// username and password (Basic): the credential resolves to its subject or
// link, which is then admitted exactly as a token of that principal.
func (s *Service) AdmitBasic(ctx context.Context, username, password, camera string) (session.Ticket, error) {
	return s.admitCredential(ctx, camera, func(c *creds.Service) (creds.Resolved, error) {
		return c.VerifyBasic(username, password)
	})
}

// AdmitDigest admits an RTSP viewer that answered the Digest challenge
// with a stream credential.
func (s *Service) AdmitDigest(ctx context.Context, d creds.Digest, camera string) (session.Ticket, error) {
	return s.admitCredential(ctx, camera, func(c *creds.Service) (creds.Resolved, error) {
		return c.VerifyDigest(d)
	})
}

func (s *Service) admitCredential(ctx context.Context, camera string, verify func(*creds.Service) (creds.Resolved, error)) (session.Ticket, error) {
	t := session.Ticket{Camera: camera}
	set := s.settings.Load()
	ip := session.RemoteIP(ctx)
	if err := set.failures.Check(ip); err != nil {
		s.count(Principal{}, err)
		return t, err
	}
	r, err := s.verifyCredential(verify)
	if err != nil {
		if errors.Is(err, session.ErrUnauthenticated) {
			set.failures.Fail(ip)
		}
		s.count(Principal{}, err)
		return t, err
	}
	// The username is an id, not a secret: logs name it as is.
	t.Credential, t.Token = r.ID, r.ID
	p := Principal{Kind: KindSubject, ID: r.Subject}
	if r.Link != "" {
		// Decide refuses a link credential on another camera (403, as a
		// link token on another camera).
		p = Principal{Kind: KindLink, ID: r.Link, Device: camera}
	}
	if err := s.admitPrincipal(ctx, p, &t); err != nil {
		s.count(p, err)
		return t, err
	}
	t.ValidUntil = credentialValidUntil(t.ValidUntil, r, s.Creds, s.Now())
	if err := s.checkLimits(&t); err != nil {
		s.count(p, err)
		return t, err
	}
	s.count(p, nil)
	return t, nil
}

func (s *Service) verifyCredential(verify func(*creds.Service) (creds.Resolved, error)) (creds.Resolved, error) {
	if s.Creds == nil {
		return creds.Resolved{}, fmt.Errorf("%w: stream credentials are not enabled", session.ErrUnauthenticated)
	}
	r, err := verify(s.Creds)
	switch {
	case errors.Is(err, creds.ErrBadCredentials):
		return r, fmt.Errorf("%w: %w", session.ErrUnauthenticated, err)
	case err != nil:
		return r, fmt.Errorf("%w: %w", session.ErrUnavailable, err)
	}
	return r, nil
}

// recheckCredential re-checks the stream credential of an open session: a
// revoked or expired one ends it.
func (s *Service) recheckCredential(t *session.Ticket, now time.Time) error {
	if t.Credential == "" {
		return nil
	}
	r, err := s.verifyCredential(func(c *creds.Service) (creds.Resolved, error) { return c.Live(t.Credential, now) })
	if errors.Is(err, session.ErrUnauthenticated) {
		t.Reason = "stream credential " + t.Credential + " revoked or expired"
		return fmt.Errorf("%w: %s", session.ErrForbidden, t.Reason)
	}
	if err != nil {
		return err
	}
	t.ValidUntil = credentialValidUntil(t.ValidUntil, r, s.Creds, now)
	return nil
}

// credentialValidUntil bounds a credential session's validity by the
// credential's not_after and by the cache's re-read interval, so a session
// on a node that missed a revoke message (Pub/Sub is at-most-once) is
// re-checked against the store within creds.Service.CacheTTL.
func credentialValidUntil(v time.Time, r creds.Resolved, c *creds.Service, now time.Time) time.Time {
	return earliest(earliest(v, r.NotAfter), now.Add(c.CacheTTL))
}

// CredentialPolicy implements creds.Policy: a viewer manages its own
// subject's credentials; an admin those of the subjects its subjects
// sections and reach include (as authz authorizes admins for subjects:
// subjects:read to list, subjects:write to create and revoke), and those of
// the share links it may manage. A link credential is managed by whoever may
// manage the link.
type CredentialPolicy struct {
	Authz *authz.Service
	Links *links.Service
}

// Subject implements creds.Policy.
func (cp CredentialPolicy) Subject(c authz.Caller, subject string, write, create bool) error {
	if c.Subject != "" {
		if c.Subject != subject {
			return fmt.Errorf("%w: a viewer manages only its own stream credentials (%s, not %s)", ErrForbidden, c.Subject, subject)
		}
		return nil
	}
	section := "subjects:read"
	if write {
		section = "subjects:write"
	}
	if !cp.Authz.AdminAllows(c, section) {
		return fmt.Errorf("%w: stream credentials of subjects need an admin key with %s", ErrForbidden, section)
	}
	if _, ok := cp.Authz.Subject(subject); !ok {
		// With individual access (which hides what root made) a missing
		// subject answers as a hidden one does: no existence oracle.
		if !cp.Authz.AdminSeesCreator(c, "root") {
			return fmt.Errorf("%w: subject %s", ErrNotVisible, subject)
		}
		if create {
			return &strictjson.Error{Field: "subject", Msg: fmt.Sprintf("no subject %q", subject)}
		}
		return nil // the subject was deleted: its credentials can still be listed and revoked
	}
	if !cp.Authz.AdminSees(c, "subjects", subject) {
		return fmt.Errorf("%w: subject %s", ErrNotVisible, subject)
	}
	return nil
}

// Link implements creds.Policy.
func (cp CredentialPolicy) Link(c authz.Caller, link string, write bool) error {
	_, err := cp.Links.Get(c, link, write)
	return err
}

// Audit implements creds.Policy.
func (cp CredentialPolicy) Audit(c authz.Caller, what, why string) {
	cp.Authz.RecordAudit(authz.AuditEntry{Who: FromCaller(c).String(), What: what, Allowed: true, Why: why})
}
