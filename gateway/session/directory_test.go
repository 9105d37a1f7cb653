package session

import (
	"testing"
	"time"

	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

func newTestRegistry(t *testing.T) *Registry {
	t.Helper()
	r := &Registry{Recheck: func(*Session) Verdict { return Verdict{Allowed: true} }}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	return r
}

func newTestDirectory(t *testing.T, srv *redistest.Server, node string) *Directory {
	t.Helper()
	d := &Directory{Client: srv.Client(), Registry: newTestRegistry(t), Node: node, Heartbeat: 50 * time.Millisecond}
	if err := d.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// TestDirectoryAcrossNodes: a session held on A is listed on B with its node,
// kicking it from B ends it on A (its protocol's Kick runs there, with the
// reason), and it disappears from B's list. A node that stops drops out.
func TestDirectoryAcrossNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	a, b := newTestDirectory(t, srv, "node-a"), newTestDirectory(t, srv, "node-b")
	kicked := make(chan string, 1)
	a.Registry.Add(&Session{ID: "s1", Protocol: ProtocolRTSP, Camera: "cam1", Subject: "alice", Variant: "full",
		Kick: func(reason string) { kicked <- reason }})
	b.Registry.Add(&Session{ID: "s2", Protocol: ProtocolHLS, Camera: "cam1", Subject: "bob", Kick: func(string) {}})
	a.Sync()

	poll.Until(t, "B to list A's session", func() bool {
		for _, s := range b.List() {
			if s.ID == "s1" && s.Node == "node-a" && s.Subject == "alice" {
				return true
			}
		}
		return false
	})

	if s, ok := b.Get("s1"); !ok || s.Node != "node-a" {
		t.Fatalf("B Get(s1) = %+v, %v", s, ok)
	}
	if s, ok := b.Get("s2"); !ok || s.Node != "node-b" {
		t.Fatalf("B Get(s2) = %+v, %v", s, ok)
	}
	if b.Kick("nope", "x") {
		t.Fatal("kicking an unknown session reported success")
	}
	if !b.Kick("s1", "kicked by ops") {
		t.Fatal("B could not kick A's session")
	}
	select {
	case reason := <-kicked:
		if reason != "kicked by ops" {
			t.Fatalf("kick reason %q", reason)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("A's session was not kicked")
	}
	if a.Registry.Len() != 0 {
		t.Fatal("A still holds the kicked session")
	}
	poll.Until(t, "B to stop listing s1", func() bool { _, ok := b.Get("s1"); return !ok })

	b.Close()
	if got := a.List(); len(got) != 0 {
		t.Fatalf("A lists %+v after B stopped", got)
	}
}
