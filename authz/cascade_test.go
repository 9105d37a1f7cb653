package authz_test

import . "github.com/camgate/camgate/authz"

import "testing"

func TestDeletesCascade(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/sites/hq", map[string]any{"org": "acme", "privacy_managers": []string{"alice"}})
	h.must(root, "PUT", "/groups/crew", map[string]any{"members": []string{"alice", "bob"}})
	h.must(root, "PUT", "/grants/ga", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"}})
	h.must(root, "PUT", "/grants/gcrew", map[string]any{"subject": "crew", "device": "cam2", "actions": []string{"live"}})
	h.must(root, "POST", "/shares", map[string]any{"id": "sh1", "device": "cam1", "owner": "alice", "recipient_email": "bob@example.com", "actions": []string{"live"}})
	h.must(viewer("bob"), "POST", "/shares/sh1/accept", nil)

	h.must(root, "DELETE", "/subjects/alice", nil)
	if g := h.must(root, "GET", "/groups/crew", nil).(map[string]any); len(g["members"].([]any)) != 1 {
		t.Fatalf("group after deleting alice = %v; want only bob", g)
	}
	if s := h.must(root, "GET", "/sites/hq", nil).(map[string]any); s["privacy_managers"] != nil {
		t.Fatalf("site after deleting alice = %v; want no privacy managers", s)
	}
	h.fails(root, "GET", "/grants/ga", nil, ErrNotFound, "")
	h.fails(root, "GET", "/shares/sh1", nil, ErrNotFound, "")
	if h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("bob keeps live from a share of a deleted owner")
	}
	h.must(root, "PUT", "/subjects/alice", map[string]any{"kind": "user"})
	if h.allowed("alice", "cam1", ActionLive) || h.allowed("alice", "cam2", ActionLive) {
		t.Fatal("a re-created alice inherits the deleted alice's access")
	}

	h.must(root, "DELETE", "/devices/cam2", nil)
	h.fails(root, "GET", "/grants/gcrew", nil, ErrNotFound, "")
	h.must(root, "DELETE", "/groups/crew", nil)
	h.must(root, "DELETE", "/sites/lobby", nil)
	h.fails(root, "DELETE", "/orgs/acme", nil, ErrConflict, "")
}

// TestStoreConflictReloads: two services on one store (two nodes). A write
// validated against a stale model loses the revision race; the node catches
// up and Handle retries it against the current model, so it succeeds and the
// other node's write is visible.
func TestStoreConflictReloads(t *testing.T) {
	st := &memStore{}
	a := &harness{t: t, clk: &clock{now: t0}, store: st}
	a.open()
	b := &harness{t: t, clk: &clock{now: t0}, store: st}
	b.open()
	a.must(root, "PUT", "/orgs/acme", map[string]any{})
	b.must(root, "PUT", "/orgs/other", map[string]any{})
	b.must(root, "GET", "/orgs/acme", nil)
	a.fails(root, "POST", "/orgs", map[string]any{"id": "other"}, ErrConflict, "")
}
