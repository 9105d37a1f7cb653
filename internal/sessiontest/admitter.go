// Package sessiontest has a fake session.Admitter for the protocol servers'
// tests: admission by a token table, with revocation and expiry the tests
// control. Tokens equal subject names; cameras are a fixed set.
package sessiontest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
)

// Admitter admits token T as subject T when the table has it: with a
// variant it may watch (full = with sound), without one it has no `live`.
type Admitter struct {
	// Cameras that exist (default: cam1 and cam2).
	Cameras []string

	mu      sync.Mutex
	tickets map[string]session.Ticket
	expired map[string]bool
}

// New returns an admitter knowing alice (live + sound), bob (live) and eve
// (a valid token without live).
func New() *Admitter {
	return &Admitter{tickets: map[string]session.Ticket{
		"alice": {Subject: "alice", Variant: stream.VariantFull},
		"bob":   {Subject: "bob", Variant: stream.VariantVideo},
		"eve":   {Subject: "eve"},
	}}
}

func (a *Admitter) knows(camera string) bool {
	cams := a.Cameras
	if cams == nil {
		cams = []string{"cam1", "cam2"}
	}
	for _, c := range cams {
		if c == camera {
			return true
		}
	}
	return false
}

// Admit implements session.Admitter.
func (a *Admitter) Admit(_ context.Context, token, camera string) (session.Ticket, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.knows(camera) {
		return session.Ticket{}, session.ErrUnknownCamera
	}
	t, ok := a.tickets[token]
	if !ok {
		return session.Ticket{}, session.ErrUnauthenticated
	}
	if t.Variant == "" {
		return session.Ticket{}, fmt.Errorf("%w: no live", session.ErrForbidden)
	}
	t.Camera, t.Token = camera, "fp-"+token
	return t, nil
}

// Recheck implements session.Admitter: it fails when the subject's token
// expired, it lost `live`, or its variant changed (e.g. `sound` revoked).
func (a *Admitter) Recheck(t *session.Ticket, _ time.Time) error {
	a.mu.Lock()
	expired := a.expired[t.Subject]
	a.mu.Unlock()
	if expired {
		return fmt.Errorf("%w: token expired", session.ErrUnauthenticated)
	}
	now, err := a.Admit(context.Background(), t.Subject, t.Camera)
	if err != nil {
		return err
	}
	if now.Variant != t.Variant {
		return fmt.Errorf("%w: variant is now %s", session.ErrForbidden, now.Variant)
	}
	return nil
}

// SetVariant changes what a subject may watch ("" revokes `live`).
func (a *Admitter) SetVariant(subject, variant string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tickets[subject]
	t.Subject, t.Variant = subject, variant
	a.tickets[subject] = t
}

// Revoke takes `live` from a subject.
func (a *Admitter) Revoke(subject string) { a.SetVariant(subject, "") }

// Expire makes the subject's token expired for re-checks.
func (a *Admitter) Expire(subject string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.expired == nil {
		a.expired = map[string]bool{}
	}
	a.expired[subject] = true
}

// Registry returns an initialized session registry that re-checks sessions
// through this admitter, as the gateway's does through authz.
func (a *Admitter) Registry(t testing.TB) *session.Registry {
	t.Helper()
	r := &session.Registry{Recheck: func(s *session.Session) session.Verdict {
		tk := session.Ticket{Subject: s.Subject, Camera: s.Camera, Variant: s.Variant}
		err := a.Recheck(&tk, time.Now())
		return session.Verdict{Allowed: err == nil, Reason: fmt.Sprint(err)}
	}}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	return r
}
