package session

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
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

// TestSessionRecheckedAtValidUntil runs on synctest's fake clock: the
// re-check happens exactly at valid_until, not before, and a re-check that
// allows again re-arms the timer at the new valid_until.
func TestSessionRecheckedAtValidUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		start := time.Now()
		var mu sync.Mutex // the timer goroutine appends, the test reads
		var checked []time.Duration
		checks := func() []time.Duration { mu.Lock(); defer mu.Unlock(); return append([]time.Duration(nil), checked...) }
		recheck := f.reg.Recheck
		f.reg.Recheck = func(s *Session) Verdict {
			mu.Lock()
			checked = append(checked, time.Since(start))
			mu.Unlock()
			v := recheck(s)
			if v.Allowed {
				v.ValidUntil = time.Now().Add(time.Hour)
			}
			return v
		}
		f.add("s1", "alice", "cam1", "", start.Add(time.Minute))
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		if c := checks(); len(c) != 0 || f.wasKicked("s1") {
			t.Fatalf("re-checked before valid_until: %v", c)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if c := checks(); len(c) != 1 || c[0] != time.Minute || f.wasKicked("s1") {
			t.Fatalf("checks %v, kicked %v; want one at 1m, still allowed", c, f.wasKicked("s1"))
		}
		f.revoke("alice/cam1") // access lapses by time: no Invalidate call
		time.Sleep(time.Hour)
		synctest.Wait()
		if c := checks(); len(c) != 2 || c[1] != time.Hour+time.Minute || !f.wasKicked("s1") {
			t.Fatalf("checks %v, kicked %v; want the second at 1h1m, ending it", c, f.wasKicked("s1"))
		}
		f.reg.Close()
	})
}

// TestCloseStopsTimers: after Close no valid_until re-check runs, and Close
// returns only when none is running (synctest fails the test if a goroutine
// of the bubble is still blocked when it ends).
func TestCloseStopsTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		for i := range 100 {
			f.add(fmt.Sprint("s", i), "alice", fmt.Sprint("cam", i), "", time.Now().Add(time.Duration(i)*time.Second))
		}
		time.Sleep(50*time.Second + time.Millisecond) // half of them re-checked (still allowed, no new valid_until)
		synctest.Wait()
		f.reg.Close()
		for i := range 100 {
			f.revoke(fmt.Sprint("alice/cam", i))
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		f.mu.Lock()
		n := len(f.kicked)
		f.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d sessions re-checked after Close", n)
		}
		// A session added after Close arms no timer.
		f.add("late", "bob", "cam1", "", time.Now().Add(time.Second))
		f.revoke("bob/cam1")
		time.Sleep(time.Minute)
		synctest.Wait()
		if f.wasKicked("late") {
			t.Fatal("a session added after Close was re-checked by time")
		}
	})
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

// TestInvalidateByCredential: a change naming a stream credential re-checks
// exactly the sessions that credential admitted, not the other sessions of
// its subject.
func TestInvalidateByCredential(t *testing.T) {
	revoked := map[string]bool{}
	var kicked []string
	var mu sync.Mutex
	r := &Registry{Recheck: func(s *Session) Verdict {
		mu.Lock()
		defer mu.Unlock()
		return Verdict{Allowed: !revoked[s.Credential], Reason: "credential revoked"}
	}}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	for id, cred := range map[string]string{"s1": "cgaaaaaaaa", "s2": "cgbbbbbbbb", "s3": ""} {
		r.Add(&Session{ID: id, Subject: "alice", Camera: "cam1", Credential: cred,
			Kick: func(string) { mu.Lock(); kicked = append(kicked, id); mu.Unlock() }})
	}
	mu.Lock()
	revoked["cgaaaaaaaa"] = true
	mu.Unlock()
	if n := r.Invalidate(Change{Credentials: []string{"cgaaaaaaaa"}}); n != 1 {
		t.Fatalf("ended %d sessions, want 1", n)
	}
	if len(kicked) != 1 || kicked[0] != "s1" || r.Len() != 2 {
		t.Fatalf("kicked %v, %d left", kicked, r.Len())
	}
	r.Remove("s2", "left")
	if n := r.Invalidate(Change{Credentials: []string{"cgbbbbbbbb"}}); n != 0 {
		t.Fatalf("a removed session was re-checked: %d", n)
	}
}
