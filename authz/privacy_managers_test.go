package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"errors"
	"testing"
)

// Issue 15 hole 14: only admins appoint privacy managers, only users can be
// one, and a viewer cannot tell a subject (or other object) that exists but
// is not its own from one that does not exist.
func TestPrivacyManagersAreAppointedByAdminsOnly(t *testing.T) {
	h := seed000(t) // alice manages hq; inst (installer) and monco (company) are members
	site := func(pms ...string) map[string]any {
		b := map[string]any{"org": "acme", "name": "HQ", "photos_on_demand": true}
		if pms != nil {
			b["privacy_managers"] = pms
		}
		return b
	}
	cases := []struct {
		name  string
		c     Caller
		body  map[string]any
		want  error
		field string
	}{
		{"privacy manager appoints a user", viewer("alice"), site("alice", "bob"), ErrForbidden, ""},
		{"privacy manager removes itself", viewer("alice"), site([]string{}...), ErrForbidden, ""},
		{"privacy manager replaces itself", viewer("alice"), site("bob"), ErrForbidden, ""},
		{"admin appoints an installer", root, site("alice", "inst"), nil, "privacy_managers[1]"},
		{"admin appoints a company", root, site("monco"), nil, "privacy_managers[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, h, tc.c, "PUT", "/sites/hq", tc.body, tc.want, tc.field, "")
		})
	}
	t.Run("a privacy manager's kind cannot leave user", func(t *testing.T) {
		expectRefused(t, h, root, "PUT", "/subjects/alice", map[string]any{"kind": "installer", "email": "alice@example.com", "org": "acme"}, nil, "kind", "privacy manager")
	})
	if got := h.must(root, "GET", "/sites/hq", nil).(map[string]any)["privacy_managers"]; mustJSON(t, got) != `["alice"]` {
		t.Fatalf("privacy managers of hq after refused writes = %v; want [alice]", got)
	}
	// The privacy manager may still change the privacy settings, sending the
	// list back or leaving it out; an admin with sites:write appoints.
	h.must(viewer("alice"), "PUT", "/sites/hq", site("alice"))
	h.must(viewer("alice"), "PUT", "/sites/hq", site())
	if pm := h.s.PrivacyManagerOf("alice", "cam1"); !pm {
		t.Fatal("leaving privacy_managers out of a privacy manager's PUT removed it")
	}
	h.must(root, "PUT", "/roles/siteadm", map[string]any{"actions": []string{}, "sections": []string{"sites:write"}})
	sa := adminKey(t, h, "sa", map[string]any{"roles": []string{"siteadm"}})
	h.must(sa, "PUT", "/sites/hq", site("alice", "bob"))
	if !h.s.PrivacyManagerOf("bob", "cam1") {
		t.Fatal("an admin with sites:write could not appoint bob")
	}
}

// A viewer gets the same answer for an object that exists but is not its own
// as for one that does not exist (issue 15 hole 14, "no existence oracle").
func TestNoExistenceOracleForViewers(t *testing.T) {
	h := seed000(t) // alice manages hq
	h.must(root, "PUT", "/subjects/carol", map[string]any{"kind": "user", "email": "carol@example.com"})
	h.must(root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live", "share"}})
	sh := h.must(viewer("alice"), "POST", "/shares", map[string]any{"device": "cam1", "recipient_email": "carol@example.com", "actions": []string{"live"}}).(map[string]any)["id"].(string)
	req := h.must(viewer("inst"), "POST", "/access-requests", map[string]any{"devices": []string{"cam1"}, "actions": []string{"live"}}).(map[string]any)["id"].(string)
	h.must(root, "PUT", "/grants/gb", map[string]any{"subject": "carol", "device": "cam1", "actions": []string{"live"}})
	h.must(root, "PUT", "/roles/reader", map[string]any{"actions": []string{}, "sections": []string{"devices:read"}})
	h.must(root, "PUT", "/roles/indsites", map[string]any{"actions": []string{}, "sections": []string{"sites:write", "grants:write"}, "individual_access": true})
	reader := adminKey(t, h, "reader", map[string]any{"roles": []string{"reader"}})
	ind := adminKey(t, h, "ind", map[string]any{"roles": []string{"indsites"}})

	cases := []struct {
		name             string
		c                Caller
		method           string
		exists, notThere string
		want             error // for both
	}{
		{"non-manager reads temporary access", viewer("bob"), "GET", "/subjects/inst/temporary-access", "/subjects/ghost/temporary-access", ErrForbidden},
		{"privacy manager reads temporary access", viewer("alice"), "GET", "/subjects/bob/temporary-access", "/subjects/ghost/temporary-access", nil},
		{"non-manager removes temporary access", viewer("bob"), "DELETE", "/subjects/inst/temporary-access", "/subjects/ghost/temporary-access", ErrForbidden},
		{"non-manager removes temporary access on a device", viewer("bob"), "DELETE", "/subjects/inst/temporary-access?device=cam1", "/subjects/inst/temporary-access?device=ghost", ErrForbidden},
		{"privacy manager removes temporary access", viewer("alice"), "DELETE", "/subjects/bob/temporary-access", "/subjects/ghost/temporary-access", nil},
		{"accept a share addressed to another", viewer("bob"), "POST", "/shares/" + sh + "/accept", "/shares/ghost/accept", ErrForbidden},
		{"approve a request for another site", viewer("bob"), "POST", "/access-requests/" + req + "/approve", "/access-requests/ghost/approve", ErrForbidden},
		{"delete another's share", viewer("bob"), "DELETE", "/shares/" + sh, "/shares/ghost", ErrForbidden},
		{"delete a grant on another's site", viewer("bob"), "DELETE", "/grants/gb", "/grants/ghost", ErrForbidden},
		{"arm a site", viewer("bob"), "POST", "/sites/hq/arm", "/sites/ghost/arm", ErrForbidden},
		{"read another subject", viewer("bob"), "GET", "/subjects/carol", "/subjects/ghost", ErrNotFound},
		{"admin without the section arms", reader, "POST", "/sites/hq/arm", "/sites/ghost/arm", ErrForbidden},
		{"admin without the section deletes", reader, "DELETE", "/grants/gb", "/grants/ghost", ErrForbidden},
		{"admin without the section removes temporary access", reader, "DELETE", "/subjects/inst/temporary-access", "/subjects/ghost/temporary-access", ErrForbidden},
		{"individual-access admin arms another's site", ind, "POST", "/sites/hq/arm", "/sites/ghost/arm", ErrNotFound},
		{"individual-access admin deletes another's grant", ind, "DELETE", "/grants/gb", "/grants/ghost", ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rev := h.s.RevForTest()
			_, errA := h.call(tc.c, tc.method, tc.exists, nil)
			_, errB := h.call(tc.c, tc.method, tc.notThere, nil)
			for _, e := range []struct {
				path string
				err  error
			}{{tc.exists, errA}, {tc.notThere, errB}} {
				if tc.want == nil && e.err != nil || tc.want != nil && !errors.Is(e.err, tc.want) {
					t.Errorf("%s %s as %v: %v; want %v", tc.method, e.path, tc.c, e.err, tc.want)
				}
			}
			if tc.want != nil && h.s.RevForTest() != rev {
				t.Fatalf("refused calls changed the store")
			}
		})
	}
}
