package session

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// fixture is a registry whose re-check answers from a set of allowed subjects.
type fixture struct {
	reg     *Registry
	mu      sync.Mutex
	allowed map[string]bool
	kicked  map[string]string // session id → reason
	ended   []string
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{allowed: map[string]bool{}, kicked: map[string]string{}}
	f.reg = &Registry{
		Recheck: func(s *Session) Verdict {
			f.mu.Lock()
			defer f.mu.Unlock()
			key := s.Subject + "/" + s.Camera
			if s.Link != "" {
				key = s.Link
			}
			return Verdict{Allowed: f.allowed[key], Reason: "revoked"}
		},
		OnEnd: func(s *Session, _ EndReason, reason string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.ended = append(f.ended, s.ID)
		},
	}
	if err := f.reg.Initialize(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) add(id, subject, camera, link string, validUntil time.Time) {
	f.mu.Lock()
	if link != "" {
		f.allowed[link] = true
	} else {
		f.allowed[subject+"/"+camera] = true
	}
	f.mu.Unlock()
	f.reg.Add(&Session{ID: id, Subject: subject, Camera: camera, Link: link, ValidUntil: validUntil,
		Kick: func(reason string) { f.mu.Lock(); f.kicked[id] = reason; f.mu.Unlock() }})
}

func (f *fixture) revoke(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.allowed, key)
}

func (f *fixture) wasKicked(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.kicked[id]
	return ok
}

func TestInvalidateEndsExactlyWhatLostAccess(t *testing.T) {
	f := newFixture(t)
	f.add("s1", "alice", "cam1", "", time.Time{})
	f.add("s2", "alice", "cam2", "", time.Time{})
	f.add("s3", "bob", "cam1", "", time.Time{})
	f.add("s4", "", "cam1", "link1", time.Time{})

	f.revoke("alice/cam1")
	if n := f.reg.Invalidate(Change{Pairs: []Pair{{Subject: "alice", Device: "cam1"}}}); n != 1 || !f.wasKicked("s1") {
		t.Fatalf("pair change ended %d, s1 kicked %v", n, f.wasKicked("s1"))
	}
	if f.wasKicked("s2") || f.wasKicked("s3") {
		t.Fatal("a session the change did not touch was kicked")
	}
	// A change naming a device re-checks its sessions; those still allowed stay.
	if n := f.reg.Invalidate(Change{Devices: []string{"cam1"}}); n != 0 {
		t.Fatalf("device re-check ended %d allowed sessions", n)
	}
	f.revoke("link1")
	if n := f.reg.Invalidate(Change{Links: []string{"link1"}}); n != 1 || !f.wasKicked("s4") {
		t.Fatalf("link change ended %d", n)
	}
	f.revoke("bob/cam1")
	f.revoke("alice/cam2")
	if n := f.reg.Invalidate(Change{All: true}); n != 2 || f.reg.Len() != 0 {
		t.Fatalf("a full re-check ended %d, %d left", n, f.reg.Len())
	}
	if len(f.ended) != 4 {
		t.Fatalf("OnEnd called %d times, want once per ended session", len(f.ended))
	}
}

func TestSessionRecheckedAtValidUntil(t *testing.T) {
	f := newFixture(t)
	f.add("s1", "alice", "cam1", "", time.Now().Add(30*time.Millisecond))
	f.revoke("alice/cam1") // access lapses by time: no Invalidate call
	deadline := time.Now().Add(5 * time.Second)
	for !f.wasKicked("s1") {
		if time.Now().After(deadline) {
			t.Fatal("the session was not re-checked at its valid_until")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOnStartRefusalAndKickAPI(t *testing.T) {
	f := newFixture(t)
	f.reg.OnStart = func(s *Session) error {
		if s.Link == "full-link" {
			return errors.New("link full")
		}
		return nil
	}
	f.add("s1", "", "cam1", "full-link", time.Time{})
	if f.reg.Len() != 0 || !f.wasKicked("s1") {
		t.Fatal("a refused session was registered or not kicked")
	}
	f.add("s2", "alice", "cam1", "", time.Time{})
	if !f.reg.Kick("s2", "kicked through the API") || f.reg.Kick("s2", "again") {
		t.Fatal("Kick should succeed once")
	}
	if got, ok := f.reg.Get("s2"); ok {
		t.Fatalf("kicked session still listed: %+v", got)
	}
	f.add("s3", "alice", "cam1", "", time.Time{})
	if f.reg.CountSubject("alice") != 1 || f.reg.CountCamera("cam1") != 1 {
		t.Fatal("counts")
	}
	f.reg.Remove("s3", "viewer left")
	if f.reg.Len() != 0 || f.wasKicked("s3") {
		t.Fatal("Remove must unregister without kicking")
	}
}
