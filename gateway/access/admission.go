package access

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/links"
)

// Admit implements session.Admitter for every live edge (RTSP, HLS, WHEP):
// it authenticates the token, refuses what is not a camera, decides `live`
// (and `sound`, which picks the variant) from the cached decision, and
// applies the session limits.
func (s *Service) Admit(ctx context.Context, raw, camera string) (session.Ticket, error) {
	t := session.Ticket{Camera: camera, Token: fingerprint(raw)}
	p, err := s.Authenticate(ctx, raw)
	if err != nil {
		if links.IsLinkToken(raw) {
			p.Kind = KindLink // a link token that did not verify
		}
		s.count(p, err)
		return t, err
	}
	if err := s.admitPrincipal(ctx, p, &t); err != nil {
		s.count(p, err)
		return t, err
	}
	if err := s.checkLimits(&t); err != nil {
		s.count(p, err)
		return t, err
	}
	s.count(p, nil)
	return t, nil
}

func (s *Service) admitPrincipal(ctx context.Context, p Principal, t *session.Ticket) error {
	switch p.Kind {
	case KindRelay:
		if session.ProtocolOf(ctx) != session.ProtocolRTSP {
			// Relays pull over RTSP only; anywhere else (HLS, WHEP, a
			// snapshot) a relay token is no credential at all.
			return fmt.Errorf("%w: a cluster relay token is valid on RTSP only", session.ErrUnauthenticated)
		}
		if p.Device != t.Camera {
			return fmt.Errorf("%w: the relay token is for another camera", session.ErrForbidden)
		}
		if dev, ok := s.Authz.Device(t.Camera); !ok || dev.Kind != "camera" {
			return fmt.Errorf("%w: %s", session.ErrUnknownCamera, t.Camera)
		}
		// Re-checked against the membership (relay.go) from RelayRecheck on.
		t.Relay, t.Variant, t.Reason = p.ID, stream.VariantFull, "relay to node "+p.ID
		t.ValidUntil = s.Now().Add(s.RelayRecheck)
		return nil
	case KindLink:
		t.Link = p.ID
		if p.Device != t.Camera {
			return fmt.Errorf("%w: the link is for another camera", session.ErrForbidden)
		}
	case KindSubject:
		t.Subject = p.ID
		if dev, ok := s.Authz.Device(t.Camera); !ok || dev.Kind != "camera" {
			return fmt.Errorf("%w: %s", session.ErrUnknownCamera, t.Camera)
		}
	default:
		return fmt.Errorf("%w: not a viewer credential", session.ErrUnauthenticated)
	}
	if err := s.decide(t, s.Now()); err != nil {
		s.Authz.RecordAudit(authz.AuditEntry{Who: p.String(), What: "live " + t.Camera, Why: t.Reason})
		return err
	}
	if t.Link != "" {
		// Refuse early when the link is full; the slot itself is taken when
		// the session starts (SessionStarted), so a race past this probe is
		// still refused there.
		release, err := s.Links.AcquireViewer(t.Link)
		if err != nil {
			return &session.RateLimitedError{RetryAfter: 30 * time.Second, What: err.Error()}
		}
		release()
	}
	return nil
}

// count tells the metrics how an admission ended.
func (s *Service) count(p Principal, err error) {
	o := OutcomeOf(err)
	s.Counters.Admission(o)
	if p.Kind == KindLink {
		s.Counters.LinkVerification(o)
	}
}

// OutcomeOf classifies an admission error.
func OutcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeAllowed
	case errors.Is(err, session.ErrRateLimited):
		return OutcomeRateLimited
	case errors.Is(err, session.ErrUnauthenticated):
		return OutcomeUnauthenticated
	case errors.Is(err, session.ErrUnknownCamera):
		return OutcomeUnknownCamera
	case errors.Is(err, session.ErrUnavailable):
		return OutcomeUnavailable
	}
	return OutcomeDenied
}

// checkLimits caps concurrent sessions per subject and per camera (per node).
func (s *Service) checkLimits(t *session.Ticket) error {
	if t.Relay != "" {
		return nil // the viewers behind a relay count at their own node
	}
	set := s.settings.Load()
	if set.MaxSessionsPerSubject > 0 && t.Subject != "" && s.Sessions.CountSubject(t.Subject) >= set.MaxSessionsPerSubject {
		return &session.RateLimitedError{RetryAfter: 10 * time.Second, What: fmt.Sprintf("subject %s already has %d sessions", t.Subject, set.MaxSessionsPerSubject)}
	}
	if set.MaxSessionsPerCamera > 0 && s.Sessions.CountCamera(t.Camera) >= set.MaxSessionsPerCamera {
		return &session.RateLimitedError{RetryAfter: 10 * time.Second, What: fmt.Sprintf("camera %s already has %d viewers", t.Camera, set.MaxSessionsPerCamera)}
	}
	return nil
}

// check decides one action for the ticket's principal (subject or link).
func (s *Service) check(t *session.Ticket, act authz.Action, now time.Time) authz.Decision {
	if t.Link != "" {
		d := s.Links.Decide(t.Link, t.Camera, act.String(), now, nil)
		return authz.Decision{Allowed: d.Allowed, Reason: d.Reason, ValidUntil: d.ValidUntil}
	}
	return s.Authz.Check(t.Subject, t.Camera, act, now)
}

// decide fills the ticket's variant and validity from the cached decision.
func (s *Service) decide(t *session.Ticket, now time.Time) error {
	live := s.check(t, authz.ActionLive, now)
	t.Reason = live.Reason
	if !live.Allowed && live.Reason == authz.ReasonStoreUnavailable {
		// Fail closed, but say why: the store (Redis) is unreachable and no
		// cached decision covers this viewer (503, not 403).
		return fmt.Errorf("%w: %s", session.ErrUnavailable, live.Reason)
	}
	if !live.Allowed {
		return fmt.Errorf("%w: %s", session.ErrForbidden, live.Reason)
	}
	t.ValidUntil = live.ValidUntil
	// Without `sound` the ticket's validity is live's alone: gaining sound
	// later does not change an open video-only session.
	t.Variant = stream.VariantVideo
	if sound := s.check(t, authz.ActionSound, now); sound.Allowed {
		t.Variant = stream.VariantFull
		t.ValidUntil = earliest(t.ValidUntil, sound.ValidUntil)
	}
	return nil
}

// Recheck implements session.Admitter.
func (s *Service) Recheck(t *session.Ticket, now time.Time) error {
	if t.Relay != "" {
		// Media only; its viewers are re-checked where they are. The
		// registry re-checks its node's membership (RecheckSession).
		if dev, ok := s.Authz.Device(t.Camera); !ok || dev.Kind != "camera" {
			return fmt.Errorf("%w: %s", session.ErrUnknownCamera, t.Camera)
		}
		return nil
	}
	prev := t.Variant
	if err := s.decide(t, now); err != nil {
		return err
	}
	if err := s.recheckCredential(t, now); err != nil {
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

// RecheckSession is the registry's re-check of an open session.
func (s *Service) RecheckSession(ss *session.Session) session.Verdict {
	if ss.Relay != "" {
		return s.recheckRelay(ss)
	}
	t := session.Ticket{Subject: ss.Subject, Link: ss.Link, Credential: ss.Credential, Relay: ss.Relay, Camera: ss.Camera, Variant: ss.Variant}
	if err := s.Recheck(&t, s.Now()); err != nil {
		if errors.Is(err, session.ErrForbidden) {
			return session.Verdict{Reason: "access revoked: " + t.Reason, End: session.EndRevoked}
		}
		return session.Verdict{Reason: err.Error(), End: session.EndUnavailable}
	}
	return session.Verdict{Allowed: true, ValidUntil: t.ValidUntil}
}

// linkSlots holds the max_viewers slot of every open link session.
type linkSlots struct {
	mu       sync.Mutex
	releases map[string]func() // by session id
}

// SessionStarted takes a viewer slot for a link session (the registry's
// OnStart): over the link's max_viewers the session is refused.
func (s *Service) SessionStarted(ss *session.Session) error {
	if ss.Link == "" {
		return nil
	}
	release, err := s.Links.AcquireViewer(ss.Link)
	if err != nil {
		return &session.RateLimitedError{RetryAfter: 30 * time.Second, What: err.Error()}
	}
	s.slots.mu.Lock()
	s.slots.releases[ss.ID] = release
	s.slots.mu.Unlock()
	return nil
}

// SessionEnded releases what a session held (the registry's OnEnd).
func (s *Service) SessionEnded(ss *session.Session) {
	if ss.Link == "" {
		return
	}
	s.slots.mu.Lock()
	release := s.slots.releases[ss.ID]
	delete(s.slots.releases, ss.ID)
	s.slots.mu.Unlock()
	if release != nil {
		release()
	}
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
