package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"strings"
	"testing"
	"time"
)

// Rule 8: a share is worth at most what its owner may do now, and gives
// nothing once the owner loses share on the device (issue 15, hole 4).

// shareFromAlice gives alice live+archive+download+share on cam1 (grant
// own), has her share live+archive+download with bob and bob accept it.
func shareFromAlice(t *testing.T) *harness {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live", "archive", "download", "share"}})
	h.must(viewer("alice"), "PUT", "/shares/sh1", map[string]any{"device": "cam1", "recipient_email": "bob@example.com", "actions": []string{"live", "archive", "download"}})
	h.must(viewer("bob"), "POST", "/shares/sh1/accept", nil)
	return h
}

// warm makes sure bob's cam1 entry is in L1 and serves: the second Check
// of an unchanged model must be a cache hit.
func warm(t *testing.T, h *harness) {
	t.Helper()
	h.s.Check("bob", "cam1", ActionLive, h.clk.Now())
	hits, _ := h.s.CacheStats()
	h.s.Check("bob", "cam1", ActionLive, h.clk.Now())
	if after, _ := h.s.CacheStats(); after != hits+1 {
		t.Fatal("bob's cam1 decision is not served from L1")
	}
}

// namedBy waits for the invalidations of the writes so far and reports
// whether one names (subject, device).
func namedBy(t *testing.T, h *harness, iv *invalidations, subject, device string) bool {
	t.Helper()
	named := false
	for rev := uint64(0); rev < h.s.RevForTest(); {
		inv := iv.next(t)
		rev = inv.Rev
		named = named || inv.Affects(subject, device)
	}
	return named
}

func TestShareIsWorthAtMostTheOwnersRights(t *testing.T) {
	type want struct {
		a       Action
		allowed bool
		reason  string
	}
	tests := []struct {
		name  string
		write func(h *harness)
		want  []want
	}{
		{"owner keeps only live+share", func(h *harness) {
			h.must(root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live", "share"}})
		}, []want{{ActionLive, true, "share: share sh1"}, {ActionArchive, false, "share_owner_lacks"}, {ActionDownload, false, "share_owner_lacks"}}},
		{"owner's grant deleted", func(h *harness) {
			h.must(root, "DELETE", "/grants/own", nil)
		}, []want{{ActionLive, false, "share_owner_lost_share"}, {ActionArchive, false, "share_owner_lost_share"}}},
		{"owner keeps everything but share", func(h *harness) {
			h.must(root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live", "archive", "download"}})
		}, []want{{ActionLive, false, "share_owner_lost_share"}, {ActionDownload, false, "share_owner_lost_share"}}},
		{"owner's share came from a group she leaves", func(h *harness) {
			h.must(root, "PUT", "/groups/crew", map[string]any{"members": []string{"alice"}})
			h.must(root, "PUT", "/grants/crew", map[string]any{"subject": "crew", "site": "hq", "actions": []string{"share"}})
			h.must(root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"}})
			if !h.allowed("bob", "cam1", ActionLive) {
				h.t.Fatal("share via the group's share: bob lacks live")
			}
			h.must(root, "PUT", "/groups/crew", map[string]any{"members": []string{}})
		}, []want{{ActionLive, false, "share_owner_lost_share"}}},
		{"owner's subject record replaced by an integrator's", func(h *harness) {
			h.must(root, "PUT", "/orgs/prov", map[string]any{})
			h.must(root, "PUT", "/subjects/alice", map[string]any{"kind": "integrator", "org": "prov", "email": "alice@example.com"})
		}, []want{{ActionLive, false, "share_owner_lost_share"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := shareFromAlice(t)
			for _, a := range []Action{ActionLive, ActionArchive, ActionDownload} {
				if !h.allowed("bob", "cam1", a) {
					t.Fatalf("before the change bob lacks %v", a)
				}
			}
			warm(t, h)
			iv := h.subscribe()
			tc.write(h)
			if !namedBy(t, h, iv, "bob", "cam1") {
				t.Error("no invalidation names the recipient bob on cam1: his open sessions are not re-checked")
			}
			for _, w := range tc.want {
				d := h.s.Check("bob", "cam1", w.a, h.clk.Now())
				if d.Allowed != w.allowed || !strings.HasPrefix(d.Reason, w.reason) {
					t.Errorf("bob %v on cam1 = %+v; want allowed=%v by %s…", w.a, d, w.allowed, w.reason)
				}
				if fresh := h.s.EvaluateFreshForTest("bob", "cam1", w.a, h.clk.Now(), -1); fresh != d {
					t.Errorf("bob %v: cached %+v, fresh %+v", w.a, d, fresh)
				}
			}
		})
	}
}

// TestShareFollowsTheOwnersConditions: the owner's schedule, validity, armed
// condition and footage limit apply to the share, evaluated at request time.
func TestShareFollowsTheOwnersConditions(t *testing.T) {
	h := newHarness(t)
	h.base()
	// alice: live+share on weekdays 08–18 until t0+3d; archive only while
	// hq is armed and only a day back.
	h.must(root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live", "share"},
		"schedule":  []map[string]any{{"days": []string{"mon", "tue", "wed", "thu", "fri"}, "from": "08:00", "to": "18:00"}},
		"not_after": t0.Add(72 * time.Hour)})
	h.must(root, "PUT", "/grants/arch", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"archive"}, "condition": "armed", "footage_within": "24h"})
	h.must(root, "POST", "/sites/hq/arm", nil)
	h.must(viewer("alice"), "PUT", "/shares/sh1", map[string]any{"device": "cam1", "recipient_email": "bob@example.com", "actions": []string{"live", "archive"},
		"active_until": t0.Add(30 * 24 * time.Hour)})
	h.must(viewer("bob"), "POST", "/shares/sh1/accept", nil)

	at18 := time.Date(2026, 3, 4, 18, 0, 0, 0, time.UTC)
	if d := h.s.Check("bob", "cam1", ActionLive, t0); !d.Allowed || !d.ValidUntil.Equal(at18) {
		t.Fatalf("bob live at t0 = %+v; want allowed until 18:00, the end of alice's schedule (the share runs 30 days)", d)
	}
	if d := h.s.Check("bob", "cam1", ActionLive, t0.Add(9*time.Hour)); d.Allowed {
		t.Fatalf("bob live at 19:00, outside alice's schedule = %+v; want denied", d)
	}
	if d := h.s.Check("bob", "cam1", ActionLive, t0.Add(96*time.Hour)); d.Allowed {
		t.Fatalf("bob live after alice's grant expired = %+v; want denied", d)
	}
	if d := h.s.CheckFootage("bob", "cam1", ActionArchive, t0, t0.Add(-23*time.Hour)); !d.Allowed {
		t.Fatalf("bob archive of 23h-old footage while armed = %+v; want allowed", d)
	}
	if d := h.s.CheckFootage("bob", "cam1", ActionArchive, t0, t0.Add(-25*time.Hour)); d.Allowed {
		t.Fatalf("bob archive of 25h-old footage = %+v; want denied: alice reaches back only 24h", d)
	}
	h.must(root, "POST", "/sites/hq/disarm", nil)
	if d := h.s.Check("bob", "cam1", ActionArchive, t0); d.Allowed || !strings.HasPrefix(d.Reason, "share_owner_lacks") {
		t.Fatalf("bob archive while hq is disarmed = %+v; want denied: alice's archive needs armed", d)
	}
	if !h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("disarming took bob's live, which alice still has")
	}
}

func TestShareAskingMoreThanTheOwnerHasIs400(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/subjects/carol", map[string]any{"kind": "user", "email": "carol@example.com"})
	h.must(root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live", "share"}})
	h.must(root, "PUT", "/grants/later", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"archive"}, "not_before": t0.Add(time.Hour)})
	tests := []struct {
		name   string
		caller Caller
		method string
		path   string
		body   map[string]any
	}{
		{"owner asks download", viewer("alice"), "POST", "/shares", map[string]any{"device": "cam1", "recipient_email": "bob@example.com", "actions": []string{"live", "download"}}},
		{"owner asks archive she gets only in an hour", viewer("alice"), "PUT", "/shares/sh9", map[string]any{"device": "cam1", "recipient_email": "bob@example.com", "actions": []string{"archive"}}},
		{"root writes it for the owner", root, "POST", "/shares", map[string]any{"device": "cam1", "owner": "alice", "recipient_email": "bob@example.com", "actions": []string{"download"}}},
		{"replacing a valid share with more", viewer("alice"), "PUT", "/shares/sh1", map[string]any{"device": "cam1", "recipient_email": "bob@example.com", "actions": []string{"live", "archive"}}},
	}
	h.must(viewer("alice"), "PUT", "/shares/sh1", map[string]any{"device": "cam1", "recipient_email": "carol@example.com", "actions": []string{"live"}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.fails(tc.caller, tc.method, tc.path, tc.body, nil, "actions")
			shares := h.must(root, "GET", "/shares", nil).([]any)
			if len(shares) != 1 || shares[0].(map[string]any)["recipient_email"] != "carol@example.com" {
				t.Fatalf("shares after the refused write = %v; want only sh1 to carol, unchanged", shares)
			}
		})
	}
	// Within the owner's rights it is fine, and so is the archive an hour on.
	h.must(viewer("alice"), "POST", "/shares", map[string]any{"device": "cam1", "recipient_email": "bob@example.com", "actions": []string{"live"}})
	h.clk.Add(time.Hour)
	h.must(viewer("alice"), "PUT", "/shares/sh1", map[string]any{"device": "cam1", "recipient_email": "carol@example.com", "actions": []string{"live", "archive"}})
}
