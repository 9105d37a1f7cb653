package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"errors"
	"strings"
	"testing"
)

// Issue 15 hole 2: no admin creates or changes an admin with more reach than
// itself. Every refusal is a 403 saying why, and nothing is stored.
func TestAdminCannotCreateAdminWithMoreReach(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/roles/cams", map[string]any{"actions": []string{}, "sections": []string{"devices:write", "admins:write"}, "individual_access": true})
	h.must(root, "PUT", "/roles/cams-open", map[string]any{"actions": []string{}, "sections": []string{"devices:write"}})
	h.must(root, "PUT", "/roles/reader", map[string]any{"actions": []string{}, "sections": []string{"devices:read"}})
	h.must(root, "PUT", "/roles/wide", map[string]any{"actions": []string{}, "sections": []string{"devices:write", "grants:write"}, "individual_access": true})
	h.must(root, "PUT", "/roles/hr", map[string]any{"actions": []string{}, "sections": []string{"devices:write", "admins:write"}})
	ind := adminKey(t, h, "ind", map[string]any{"roles": []string{"cams"}})
	hr := adminKey(t, h, "hr", map[string]any{"roles": []string{"hr"}})
	h.must(root, "PUT", "/roles/roler", map[string]any{"actions": []string{}, "sections": []string{"roles:write", "devices:read"}})
	roler := adminKey(t, h, "roler", map[string]any{"roles": []string{"roler"}})
	h.must(root, "PUT", "/admins/boss", map[string]any{"roles": []string{"wide", "hr"}, "individual_access": false})
	h.must(ind, "PUT", "/admins/sub", map[string]any{"roles": []string{"cams"}})

	cases := []struct {
		name         string
		c            Caller
		method, path string
		body         any
		why          string
	}{
		{"individual creates admin with individual access off", ind, "PUT", "/admins/x",
			map[string]any{"roles": []string{"cams"}, "individual_access": false}, "individual access"},
		{"individual creates admin whose roles resolve auto to off", ind, "PUT", "/admins/x",
			map[string]any{"roles": []string{"cams-open"}}, "individual access"},
		{"individual turns its sub-admin's individual access off", ind, "PUT", "/admins/sub",
			map[string]any{"roles": []string{"cams"}, "individual_access": false}, "individual access"},
		{"role with a section the caller lacks", ind, "PUT", "/admins/x",
			map[string]any{"roles": []string{"wide"}}, "grants:write"},
		{"admin demotes an admin with more reach", hr, "PUT", "/admins/boss",
			map[string]any{"roles": []string{"reader"}}, "more reach"},
		{"admin deletes an admin with more reach", hr, "DELETE", "/admins/boss", nil, "more reach"},
		{"admin gives itself a role beyond its sections", hr, "PUT", "/admins/hr",
			map[string]any{"roles": []string{"hr", "wide"}}, "grants:write"},
		{"roles:write admin writes a role beyond its sections", roler, "PUT", "/roles/mine",
			map[string]any{"actions": []string{}, "sections": []string{"*"}}, "more reach"},
		{"roles:write admin narrows a wider role", roler, "PUT", "/roles/wide",
			map[string]any{"actions": []string{}, "sections": []string{"devices:read"}}, "more reach"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rev := h.s.RevForTest()
			_, err := h.call(tc.c, tc.method, tc.path, tc.body)
			if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("%s %s = %v; want 403 saying %q", tc.method, tc.path, err, tc.why)
			}
			if h.s.RevForTest() != rev {
				t.Fatalf("a refused admin write changed the store (rev %d → %d)", rev, h.s.RevForTest())
			}
		})
	}
	h.fails(root, "GET", "/admins/x", nil, ErrNotFound, "")
	// An individual-access admin created by root does not see itself (a
	// GET of it is a 404): turning its own individual access off is the
	// 404 of a missing admin, and changes nothing.
	rev := h.s.RevForTest()
	h.fails(ind, "GET", "/admins/ind", nil, ErrNotFound, "")
	h.fails(ind, "PUT", "/admins/ind", map[string]any{"roles": []string{"cams"}, "individual_access": false}, ErrNotFound, "")
	if h.s.RevForTest() != rev {
		t.Fatal("a refused admin write changed the store")
	}
	if a := h.must(root, "GET", "/admins/sub", nil).(map[string]any); a["individual"] != true {
		t.Fatalf("sub-admin after refused changes = %v; want individual access still on", a)
	}
	if a := h.must(root, "GET", "/admins/boss", nil).(map[string]any); len(a["sections"].([]any)) != 3 {
		t.Fatalf("boss after refused demotion = %v; want its three sections", a)
	}
	// Within reach is fine: write implies read, individual stays on, and a
	// non-individual admin may create an individual one.
	h.must(ind, "PUT", "/admins/y", map[string]any{"roles": []string{"reader"}, "individual_access": true})
	h.must(ind, "PUT", "/admins/sub", map[string]any{"roles": []string{"reader", "cams"}})
	h.must(hr, "PUT", "/admins/z", map[string]any{"roles": []string{"cams"}})
	h.must(hr, "PUT", "/admins/z2", map[string]any{"roles": []string{"cams-open"}, "individual_access": false})
	h.must(hr, "DELETE", "/admins/z2", nil)
	h.must(root, "PUT", "/admins/boss", map[string]any{"roles": []string{"reader"}})
	h.must(roler, "PUT", "/roles/mine", map[string]any{"actions": []string{}, "sections": []string{"devices:read"}})
}
