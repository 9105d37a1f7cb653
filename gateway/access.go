package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/token"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
)

// access admits viewers: it verifies their token and decides from the
// cached permission decision. It implements session.Admitter for every
// protocol and the registry's re-check.
type access struct {
	verifier *token.Verifier
	authz    *authz.Service
	metrics  *metrics
	now      func() time.Time
}

// subjectOf verifies a viewer token and returns its subject.
func (a *access) subjectOf(raw string) (token.Claims, error) {
	if raw == "" {
		return token.Claims{}, fmt.Errorf("%w: no token", session.ErrUnauthenticated)
	}
	c, err := a.verifier.Verify(raw)
	if err != nil {
		return token.Claims{}, fmt.Errorf("%w: %w", session.ErrUnauthenticated, err)
	}
	return c, nil
}

// Admit implements session.Admitter.
func (a *access) Admit(_ context.Context, raw, camera string) (session.Ticket, error) {
	claims, err := a.subjectOf(raw)
	if err != nil {
		a.metrics.decision("unauthenticated")
		return session.Ticket{}, err
	}
	t := session.Ticket{Subject: claims.Subject, Camera: camera, Token: token.Fingerprint(raw)}
	if dev, ok := a.authz.Device(camera); !ok || dev.Kind != "camera" {
		a.metrics.decision("unknown_camera")
		return t, fmt.Errorf("%w: %s", session.ErrUnknownCamera, camera)
	}
	if err := a.decide(&t, a.now()); err != nil {
		a.authz.RecordAudit(authz.AuditEntry{Who: "subject:" + t.Subject, What: "live " + camera, Why: t.Reason})
		return t, err
	}
	return t, nil
}

// decide fills the ticket's variant and validity from the cached decision.
func (a *access) decide(t *session.Ticket, now time.Time) error {
	live := a.authz.Check(t.Subject, t.Camera, authz.ActionLive, now)
	if !live.Allowed {
		a.metrics.decision("denied")
		t.Reason = live.Reason
		return fmt.Errorf("%w: %s", session.ErrForbidden, live.Reason)
	}
	a.metrics.decision("allowed")
	t.Reason = live.Reason
	t.ValidUntil = live.ValidUntil
	// Without `sound` the ticket's validity is live's alone: gaining sound
	// later does not change an open video-only session.
	t.Variant = stream.VariantVideo
	if sound := a.authz.Check(t.Subject, t.Camera, authz.ActionSound, now); sound.Allowed {
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
	if prev == stream.VariantFull && t.Variant != stream.VariantFull {
		t.Variant = prev
		return fmt.Errorf("%w: sound revoked", session.ErrForbidden)
	}
	t.Variant = prev
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
