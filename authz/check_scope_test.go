package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"testing"
)

// Issue 15 hole 9: /check is scoped like every other read. An
// individual-access admin asks only about subjects and devices it sees
// (anything else, existing or not, is the 404 a GET of it gives); a viewer
// asks only about itself and learns nothing about devices it cannot use.
func TestCheckIsScoped(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/roles/ops", map[string]any{"actions": []string{},
		"sections": []string{"check:read", "devices:write", "subjects:write", "grants:write"}, "individual_access": true})
	h.must(root, "PUT", "/roles/ops-all", map[string]any{"actions": []string{}, "sections": []string{"check:read"}})
	ind := adminKey(t, h, "ind", map[string]any{"roles": []string{"ops"}})
	all := adminKey(t, h, "all", map[string]any{"roles": []string{"ops-all"}})
	h.must(ind, "PUT", "/devices/mine", map[string]any{"site": "hq", "source": "builtin:demo"})
	h.must(ind, "PUT", "/subjects/sam", map[string]any{"kind": "user"})
	h.must(ind, "PUT", "/grants/gs", map[string]any{"subject": "sam", "device": "mine", "actions": []string{"live"}})
	h.must(root, "PUT", "/grants/ga", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"}})

	if got := h.must(ind, "GET", "/check?subject=sam&device=mine&action=live", nil).(map[string]any); got["allowed"] != true {
		t.Fatalf("ind checks its own subject on its own device: %v; want allowed", got)
	}
	h.fails(ind, "GET", "/devices/cam1", nil, ErrNotFound, "")
	cases := []struct{ name, query string }{
		{"subject of another admin", "subject=alice&device=mine&action=live"},
		{"device of another admin", "subject=sam&device=cam1&action=live"},
		{"both of another admin", "subject=alice&device=cam1&action=live"},
		{"subject that does not exist", "subject=ghost&device=mine&action=live"},
		{"device that does not exist", "subject=sam&device=ghost&action=live"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, h, ind, "GET", "/check?"+tc.query, nil, ErrNotFound, "", "")
		})
	}
	if got := h.must(all, "GET", "/check?subject=alice&device=cam1&action=live", nil).(map[string]any); got["allowed"] != true {
		t.Fatalf("admin without individual access: %v; want alice allowed on cam1", got)
	}
	h.fails(viewer("bob"), "GET", "/check?subject=alice&device=cam1&action=live", nil, ErrForbidden, "")
	// bob has nothing on cam1 and cam1 exists; ghost does not exist: the
	// same answer.
	known := mustJSON(t, h.must(viewer("bob"), "GET", "/check?device=cam1&action=live", nil))
	ghost := mustJSON(t, h.must(viewer("bob"), "GET", "/check?device=ghost&action=live", nil))
	if known != ghost {
		t.Fatalf("a viewer tells an existing device from a missing one: %s vs %s", known, ghost)
	}
}
