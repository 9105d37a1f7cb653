package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"testing"
	"time"
)

// Issue 15 hole 6: read-only state is refused on create (any value) and on
// replace (any value other than the stored one), with a 400 naming the
// field; a GET-modify-PUT still works.
func TestReadOnlyFieldsRefused(t *testing.T) {
	h := seed000(t)
	far := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	h.must(root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live", "share"}})
	h.must(root, "PUT", "/grants/mon", map[string]any{"subject": "monco", "device": "cam1", "actions": []string{"live"}, "condition": "after_alarm"})
	cases := []struct {
		name         string
		c            Caller
		method, path string
		body         map[string]any
		field        string
	}{
		{"device alarm_until on create", root, "PUT", "/devices/cam9", map[string]any{"site": "hq", "source": "builtin:demo", "alarm_until": far}, "alarm_until"},
		{"device alarm_until on POST", root, "POST", "/devices", map[string]any{"site": "hq", "source": "builtin:demo", "alarm_until": far}, "alarm_until"},
		{"device alarm_until on replace", root, "PUT", "/devices/cam1", map[string]any{"site": "hq", "source": "rtsp://10.0.0.1/s1", "alarm_until": far}, "alarm_until"},
		{"org provider_allowed_until on create", root, "PUT", "/orgs/o9", map[string]any{"name": "O", "provider_allowed_until": far}, "provider_allowed_until"},
		{"org provider_allowed_until on replace", root, "PUT", "/orgs/acme", map[string]any{"name": "Acme", "provider_allowed_until": far}, "provider_allowed_until"},
		{"site armed on create", root, "PUT", "/sites/s9", map[string]any{"org": "acme", "armed": true}, "armed"},
		{"site armed false on create", root, "PUT", "/sites/s9", map[string]any{"org": "acme", "armed": false}, "armed"},
		{"site armed in other case", root, "PUT", "/sites/s9", map[string]any{"org": "acme", "ARMED": true}, "armed"},
		{"site armed on replace", root, "PUT", "/sites/hq", map[string]any{"org": "acme", "name": "HQ", "privacy_managers": []string{"alice"}, "armed": true}, "armed"},
		{"site armed by a privacy manager", viewer("alice"), "PUT", "/sites/hq", map[string]any{"org": "acme", "name": "HQ", "privacy_managers": []string{"alice"}, "armed": true}, "armed"},
		{"grant source on create", root, "PUT", "/grants/g9", map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live"}, "source": "auto"}, "source"},
		{"grant source on replace", root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live", "share"}, "source": "request"}, "source"},
		{"share state on create", viewer("alice"), "POST", "/shares", map[string]any{"device": "cam1", "recipient_email": "bob@example.com", "actions": []string{"live"}, "state": "accepted"}, "state"},
		{"share recipient on create", viewer("alice"), "POST", "/shares", map[string]any{"device": "cam1", "recipient_email": "bob@example.com", "actions": []string{"live"}, "recipient": "bob"}, "recipient"},
		{"access request state on create", viewer("inst"), "POST", "/access-requests", map[string]any{"devices": []string{"cam1"}, "actions": []string{"live"}, "state": "approved"}, "state"},
		{"admin key on create", root, "PUT", "/admins/a9", map[string]any{"roles": []string{}, "key": "cgk_chosen"}, "key"},
		{"admin sections on create", root, "PUT", "/admins/a9", map[string]any{"roles": []string{}, "sections": []string{"*"}}, "sections"},
		{"created_by on create", root, "PUT", "/subjects/s9", map[string]any{"kind": "user", "created_by": "admin:someone"}, "created_by"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, h, tc.c, tc.method, tc.path, tc.body, nil, tc.field, "read-only")
		})
	}
	for _, path := range []string{"/devices/cam9", "/orgs/o9", "/sites/s9", "/grants/g9", "/admins/a9", "/subjects/s9"} {
		h.fails(root, "GET", path, nil, ErrNotFound, "")
	}
	if d := h.s.Check("monco", "cam1", ActionLive, t0); d.Allowed {
		t.Fatalf("after_alarm grant works without an alarm: %+v", d)
	}
	if site := h.must(root, "GET", "/sites/hq", nil).(map[string]any); site["armed"] != false {
		t.Fatalf("site hq = %v; want still disarmed", site)
	}

	// GET-modify-PUT with the read-only values a GET returned is fine, and
	// keeps them.
	h.must(root, "POST", "/sites/hq/arm", nil)
	h.must(root, "POST", "/devices/cam1/alarm", nil)
	h.must(root, "POST", "/orgs/acme/allow-provider", nil)
	for _, path := range []string{"/sites/hq", "/devices/cam1", "/orgs/acme", "/grants/own", "/admins/a1", "/subjects/alice"} {
		if path == "/admins/a1" {
			adminKey(t, h, "a1", map[string]any{"roles": []string{}})
		}
		obj := h.must(root, "GET", path, nil).(map[string]any)
		obj["name"] = "renamed"
		if path == "/grants/own" {
			delete(obj, "name")
			obj["actions"] = []string{"live", "share", "sound"}
		}
		h.must(root, "PUT", path, obj)
		after := h.must(root, "GET", path, nil).(map[string]any)
		for _, f := range []string{"armed", "alarm_until", "provider_allowed_until", "source", "created_by", "sections", "individual"} {
			if mustJSON(t, after[f]) != mustJSON(t, obj[f]) {
				t.Errorf("GET-modify-PUT %s changed %s: %v → %v", path, f, obj[f], after[f])
			}
		}
	}
	if d := h.s.Check("monco", "cam1", ActionLive, h.clk.Now()); !d.Allowed {
		t.Fatalf("after a real alarm the after_alarm grant does not work: %+v", d)
	}
}
