package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"strings"
	"testing"
	"time"
)

func TestGrantCheckAndSiteInheritance(t *testing.T) {
	h := newHarness(t)
	h.base()
	if h.allowed("alice", "cam2", ActionLive) {
		t.Fatal("default deny: alice sees cam2 without any grant")
	}
	h.must(root, "PUT", "/grants/g1", map[string]any{"subject": "alice", "site": "hq", "actions": []string{"live"}})
	got := h.must(root, "GET", "/check?subject=alice&device=cam2&action=live", nil).(map[string]any)
	if got["allowed"] != true || !strings.Contains(got["reason"].(string), "g1") {
		t.Fatalf("check alice live cam2 (site grant on parent hq) = %v; want allowed naming g1", got)
	}
	if h.allowed("alice", "cam2", ActionArchive) {
		t.Fatal("alice has archive on cam2 though g1 gives only live")
	}
	if h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("bob has live from alice's grant")
	}
	h.must(root, "DELETE", "/grants/g1", nil)
	if h.allowed("alice", "cam2", ActionLive) {
		t.Fatal("alice keeps live after her grant was deleted")
	}
}

func TestValidityWindowValidUntil(t *testing.T) {
	h := newHarness(t)
	h.base()
	nb, na := t0.Add(time.Hour), t0.Add(3*time.Hour)
	h.must(root, "POST", "/grants", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"},
		"not_before": nb, "not_after": na})
	d := h.s.Check("alice", "cam1", ActionLive, t0)
	if d.Allowed || !d.ValidUntil.Equal(nb) {
		t.Fatalf("before not_before: %+v; want denied, valid until %v", d, nb)
	}
	d = h.s.Check("alice", "cam1", ActionLive, t0.Add(2*time.Hour))
	if !d.Allowed || !d.ValidUntil.Equal(na) {
		t.Fatalf("inside window: %+v; want allowed until %v", d, na)
	}
	if d := h.s.Check("alice", "cam1", ActionLive, na); d.Allowed {
		t.Fatalf("at not_after: %+v; want denied", d)
	}
}

func TestStoreSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/grants/g1", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live", "sound"}})
	h.must(root, "POST", "/sites/hq/arm", nil)
	h.restart()
	if !h.allowed("alice", "cam1", ActionSound) {
		t.Fatal("after restart alice lost live+sound on cam1")
	}
	site := h.must(root, "GET", "/sites/hq", nil).(map[string]any)
	if site["armed"] != true {
		t.Fatalf("after restart site hq = %v; want armed", site)
	}
}

func TestBadInputIs400NamingField(t *testing.T) {
	h := newHarness(t)
	h.base()
	cases := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"unknown field", "PUT", "/devices/cam9", `{"site":"hq","colour":"red"}`, "colour"},
		{"file source", "PUT", "/devices/cam9", map[string]any{"site": "hq", "source": "file:///etc/passwd"}, "source"},
		{"unknown site", "PUT", "/devices/cam9", map[string]any{"site": "nowhere", "source": "builtin:demo"}, "site"},
		{"bad kind", "PUT", "/devices/cam9", map[string]any{"site": "hq", "kind": "toaster"}, "kind"},
		{"site cycle", "PUT", "/sites/hq", map[string]any{"org": "acme", "parent": "lobby"}, "parent"},
		{"self parent", "PUT", "/sites/hq", map[string]any{"org": "acme", "parent": "hq"}, "parent"},
		{"dotdot id", "PUT", "/devices/..", map[string]any{"site": "hq"}, "id"},
		{"encoded slash id", "PUT", "/devices/a%2fb", map[string]any{"site": "hq"}, "id"},
		{"unknown action", "PUT", "/grants/gx", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"fly"}}, "actions"},
		{"device and site", "PUT", "/grants/gx", map[string]any{"subject": "alice", "device": "cam1", "site": "hq", "actions": []string{"live"}}, "device"},
		{"unknown subject", "PUT", "/grants/gx", map[string]any{"subject": "zed", "device": "cam1", "actions": []string{"live"}}, "subject"},
		{"after before before", "PUT", "/grants/gx", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"},
			"not_before": t0, "not_after": t0.Add(-time.Hour)}, "not_after"},
		{"bad time", "PUT", "/grants/gx", `{"subject":"alice","device":"cam1","actions":["live"],"not_after":"tomorrow"}`, "not_after"},
		{"bad check action", "GET", "/check?subject=alice&device=cam1&action=fly", nil, "action"},
		{"empty body", "PUT", "/subjects/x", "", "body"},
		{"id mismatch", "PUT", "/subjects/x", map[string]any{"id": "y", "kind": "user"}, "id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.s.RevForTest()
			h.fails(root, tc.method, tc.path, tc.body, nil, tc.field)
			if h.s.RevForTest() != before {
				t.Fatalf("a rejected write changed the store (rev %d → %d)", before, h.s.RevForTest())
			}
		})
	}
}

func TestDeviceReadsRedactPTZPassword(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/devices/ptz1", map[string]any{"site": "hq", "source": "rtsp://cam/ptz",
		"ptz": map[string]any{"onvif_url": "http://cam/onvif/device_service", "username": "admin", "password": "s3cret!"}})
	for _, path := range []string{"/devices/ptz1", "/devices"} {
		res, err := h.call(root, "GET", path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b := mustJSON(t, res.Body); strings.Contains(b, "s3cret!") {
			t.Fatalf("GET %s leaks the PTZ password: %s", path, b)
		}
	}
	// A GET-modify-PUT round trip keeps the stored password.
	dev := h.must(root, "GET", "/devices/ptz1", nil).(map[string]any)
	dev["name"] = "renamed"
	h.must(root, "PUT", "/devices/ptz1", dev)
	if d, _ := h.s.Device("ptz1"); d.PTZ == nil || d.PTZ.Password != "s3cret!" || d.Name != "renamed" {
		t.Fatalf("after round trip Device = %+v; want password kept", d)
	}
}

func TestErrorsForMissingAndConflicts(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.fails(root, "GET", "/devices/nope", nil, ErrNotFound, "")
	h.fails(root, "DELETE", "/sites/hq", nil, ErrConflict, "") // still has devices and a sub-site
	h.fails(root, "POST", "/subjects", map[string]any{"id": "alice", "kind": "user"}, ErrConflict, "")
	// Not authz's endpoints (the gateway routes them, see httpapi's
	// TestGatewayEndpointsNeverReachAuthz): to authz they do not exist.
	h.fails(root, "GET", "/links", nil, ErrNotFound, "")
	h.fails(root, "POST", "/devices/cam1/objects", "{}", ErrNotFound, "")
	h.fails(viewer("alice"), "GET", "/devices", nil, ErrForbidden, "")
	res, err := h.call(root, "POST", "/subjects", map[string]any{"kind": "user"})
	if err != nil || !res.Created || res.Body.(*Subject).ID == "" {
		t.Fatalf("POST /subjects = %+v, %v; want 201 with a generated id", res, err)
	}
}

func TestInvalidationNamesExactlyWhatChanged(t *testing.T) {
	h := newHarness(t)
	h.base()
	iv := h.subscribe()
	h.must(root, "PUT", "/grants/g1", map[string]any{"subject": "alice", "site": "hq", "actions": []string{"live"}})
	inv := iv.next(t)
	if inv.All || !inv.Affects("alice", "cam1") || !inv.Affects("alice", "cam2") || inv.Affects("bob", "cam1") {
		t.Fatalf("site grant invalidation = %+v; want alice × {cam1, cam2} only", inv)
	}
	h.must(root, "PUT", "/grants/g2", map[string]any{"subject": "bob", "device": "cam2", "actions": []string{"live"}})
	inv2 := iv.next(t)
	if inv2.Rev <= inv.Rev || !inv2.Affects("bob", "cam2") || inv2.Affects("bob", "cam1") || inv2.Affects("alice", "cam2") {
		t.Fatalf("device grant invalidation = %+v; want bob × cam2 only, after rev %d", inv2, inv.Rev)
	}
	h.must(root, "POST", "/sites/lobby/arm", nil)
	inv3 := iv.next(t)
	if !inv3.Affects("anyone", "cam2") || inv3.Affects("anyone", "cam1") {
		t.Fatalf("arming lobby = %+v; want every subject on cam2 only", inv3)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	res, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
