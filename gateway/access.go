package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/token"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/links"
)

// access admits viewers: it verifies their token (a viewer JWT or a share
// link) and decides from the cached permission decision. It implements
// session.Admitter for every protocol and the registry's re-check.
type access struct {
	authz    *authz.Service
	links    *links.Service
	registry *session.Registry
	metrics  *metrics
	now      func() time.Time

	// settings are what a configuration reload (SIGHUP) replaces, swapped
	// as a whole so a request sees one consistent set.
	settings atomic.Pointer[accessSettings]
}

// accessSettings are the reloadable parts of admission.
type accessSettings struct {
	verifier                    *token.Verifier
	tokens                      *tokenCache
	failures                    *session.FailureLimiter
	maxPerSubject, maxPerCamera int
}

// subjectOf verifies a viewer token and returns its claims.
func (a *access) subjectOf(raw string) (token.Claims, error) {
	if raw == "" {
		return token.Claims{}, fmt.Errorf("%w: no token", session.ErrUnauthenticated)
	}
	set, now := a.settings.Load(), a.now()
	if c, ok := set.tokens.get(raw, now); ok {
		return c, nil
	}
	c, err := set.verifier.Verify(raw)
	if err != nil {
		return token.Claims{}, fmt.Errorf("%w: %w", session.ErrUnauthenticated, err)
	}
	set.tokens.put(raw, c)
	return c, nil
}

// isLinkToken tells a share-link token from a viewer token; a viewer token
// verified before is known without parsing it again.
func (a *access) isLinkToken(raw string) bool {
	if _, cached := a.settings.Load().tokens.get(raw, a.now()); cached {
		return false
	}
	return links.IsLinkToken(raw)
}

// Admit implements session.Admitter.
func (a *access) Admit(ctx context.Context, raw, camera string) (session.Ticket, error) {
	ip := session.RemoteIP(ctx)
	set := a.settings.Load()
	if err := set.failures.Check(ip); err != nil {
		return session.Ticket{}, err
	}
	t := session.Ticket{Camera: camera, Token: token.Fingerprint(raw)}
	var err error
	if a.isLinkToken(raw) {
		err = a.admitLink(raw, &t)
	} else {
		err = a.admitViewer(raw, &t)
	}
	if errors.Is(err, session.ErrUnauthenticated) {
		set.failures.Fail(ip)
	}
	if err != nil {
		return t, err
	}
	return t, a.checkLimits(set, &t)
}

func (a *access) admitViewer(raw string, t *session.Ticket) error {
	claims, err := a.subjectOf(raw)
	if err != nil {
		a.metrics.decision("unauthenticated")
		return err
	}
	t.Subject = claims.Subject
	if dev, ok := a.authz.Device(t.Camera); !ok || dev.Kind != "camera" {
		a.metrics.decision("unknown_camera")
		return fmt.Errorf("%w: %s", session.ErrUnknownCamera, t.Camera)
	}
	if err := a.decide(t, a.now()); err != nil {
		a.authz.RecordAudit(authz.AuditEntry{Who: "subject:" + t.Subject, What: "live " + t.Camera, Why: t.Reason})
		return err
	}
	return nil
}

func (a *access) admitLink(raw string, t *session.Ticket) error {
	claims, err := a.links.Verify(raw)
	if err != nil {
		a.metrics.decision("unauthenticated")
		a.metrics.linkVerification("invalid")
		return fmt.Errorf("%w: %w", session.ErrUnauthenticated, err)
	}
	t.Link = claims.LinkID
	if claims.Device != t.Camera {
		a.metrics.decision("denied")
		return fmt.Errorf("%w: the link is for another camera", session.ErrForbidden)
	}
	if err := a.decide(t, a.now()); err != nil {
		a.metrics.linkVerification("denied")
		a.authz.RecordAudit(authz.AuditEntry{Who: "link:" + t.Link, What: "live " + t.Camera, Why: t.Reason})
		return err
	}
	a.metrics.linkVerification("allowed")
	// Refuse early when the link is full; the slot itself is taken when the
	// session starts (Registry.OnStart), so a race past this probe is still
	// refused there.
	release, err := a.links.AcquireViewer(t.Link)
	if err != nil {
		return &session.RateLimitedError{RetryAfter: 30 * time.Second, What: err.Error()}
	}
	release()
	return nil
}

// checkLimits caps concurrent sessions per subject and per camera (per node).
func (a *access) checkLimits(set *accessSettings, t *session.Ticket) error {
	if set.maxPerSubject > 0 && t.Subject != "" && a.registry.CountSubject(t.Subject) >= set.maxPerSubject {
		return &session.RateLimitedError{RetryAfter: 10 * time.Second, What: fmt.Sprintf("subject %s already has %d sessions", t.Subject, set.maxPerSubject)}
	}
	if set.maxPerCamera > 0 && a.registry.CountCamera(t.Camera) >= set.maxPerCamera {
		return &session.RateLimitedError{RetryAfter: 10 * time.Second, What: fmt.Sprintf("camera %s already has %d viewers", t.Camera, set.maxPerCamera)}
	}
	return nil
}

// check decides one action for the ticket's principal (subject or link).
func (a *access) check(t *session.Ticket, act authz.Action, name string, now time.Time) authz.Decision {
	if t.Link != "" {
		d := a.links.Decide(t.Link, t.Camera, name, now, nil)
		return authz.Decision{Allowed: d.Allowed, Reason: d.Reason, ValidUntil: d.ValidUntil}
	}
	return a.authz.Check(t.Subject, t.Camera, act, now)
}

// decide fills the ticket's variant and validity from the cached decision.
func (a *access) decide(t *session.Ticket, now time.Time) error {
	live := a.check(t, authz.ActionLive, "live", now)
	t.Reason = live.Reason
	if !live.Allowed && live.Reason == authz.ReasonStoreUnavailable {
		// Fail closed, but say why: the store (Redis) is unreachable and no
		// cached decision covers this viewer (503, not 403).
		a.metrics.decision("unavailable")
		return fmt.Errorf("%w: %s", session.ErrUnavailable, live.Reason)
	}
	if !live.Allowed {
		a.metrics.decision("denied")
		return fmt.Errorf("%w: %s", session.ErrForbidden, live.Reason)
	}
	a.metrics.decision("allowed")
	t.ValidUntil = live.ValidUntil
	// Without `sound` the ticket's validity is live's alone: gaining sound
	// later does not change an open video-only session.
	t.Variant = stream.VariantVideo
	if sound := a.check(t, authz.ActionSound, "sound", now); sound.Allowed {
		t.Variant = stream.VariantFull
		t.ValidUntil = earliest(t.ValidUntil, sound.ValidUntil)
	}
	return nil
}

// Recheck implements session.Admitter.
func (a *access) Recheck(t *session.Ticket, now time.Time) error {
	prev := t.Variant
	if err := a.decide(t, now); err != nil {
		return err
	}
	got := t.Variant
	t.Variant = prev
	if prev == stream.VariantFull && got != stream.VariantFull {
		t.Reason = "sound revoked (reconnect to get video only)"
		return fmt.Errorf("%w: %s", session.ErrForbidden, t.Reason)
	}
	return nil
}

// recheckSession adapts Recheck to the registry.
func (a *access) recheckSession(s *session.Session) session.Verdict {
	t := session.Ticket{Subject: s.Subject, Link: s.Link, Camera: s.Camera, Variant: s.Variant}
	if err := a.Recheck(&t, a.now()); err != nil {
		reason := err.Error()
		if errors.Is(err, session.ErrForbidden) {
			reason = "access revoked: " + t.Reason
		}
		return session.Verdict{Reason: reason}
	}
	return session.Verdict{Allowed: true, ValidUntil: t.ValidUntil}
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}
