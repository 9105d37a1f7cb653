package authz_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/camgate/camgate/authz"
)

// Red-team attacks on the viewer write paths (site admins, settings
// holders, companies), bulk access and role templates. Each asserts the
// refusal and that the model did not change.

// attack is one request an attacker sends and the refusal it must get:
// err (errors.Is) or, for a 400, the field it names.
type attack struct {
	name   string
	c      Caller
	method string
	path   string
	body   any
	err    error
	field  string
}

// refuseAll runs attacks and asserts each is refused and the model revision
// is unchanged after every one.
func (h *harness) refuseAll(t *testing.T, attacks []attack) {
	t.Helper()
	for _, a := range attacks {
		rev := h.s.RevForTest()
		_, err := h.call(a.c, a.method, a.path, a.body)
		var fe *FieldError
		switch {
		case err == nil:
			t.Errorf("%s: %s %s succeeded; want it refused", a.name, a.method, a.path)
		case a.field != "" && (!errors.As(err, &fe) || fe.Field != a.field):
			t.Errorf("%s: err %v; want a 400 naming %q", a.name, err, a.field)
		case a.field == "" && !errors.Is(err, a.err):
			t.Errorf("%s: err %v; want %v", a.name, err, a.err)
		}
		if got := h.s.RevForTest(); got != rev {
			t.Errorf("%s: a refused request changed the model (rev %d → %d)", a.name, rev, got)
		}
	}
}

// siteAdminFixture: alice is site admin of lobby (under hq); pm manages
// lobby's privacy; group crew holds alice and carol, group pmcrew holds pm
// and carol; bob has a site grant on hq, pm a grant on cam2, pmcrew one
// on lobby; site other (cam3) is outside alice's reach.
func siteAdminFixture(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.base()
	for _, s := range []string{"carol", "pm", "dave"} {
		h.must(root, "PUT", "/subjects/"+s, map[string]any{"kind": "user"})
	}
	h.must(root, "PUT", "/sites/lobby", map[string]any{"parent": "hq", "name": "Lobby", "privacy_managers": []string{"pm"}})
	h.must(root, "PUT", "/sites/other", map[string]any{"org": "acme", "name": "Other"})
	h.must(root, "PUT", "/devices/cam3", map[string]any{"site": "other", "kind": "camera", "source": "builtin:demo"})
	h.must(root, "PUT", "/groups/crew", map[string]any{"members": []string{"alice", "carol"}})
	h.must(root, "PUT", "/groups/pmcrew", map[string]any{"members": []string{"pm", "carol"}})
	h.must(root, "PUT", "/grants/sa", map[string]any{"subject": "alice", "site": "lobby", "role": "site_admin"})
	h.must(root, "PUT", "/grants/g-bob-hq", map[string]any{"subject": "bob", "site": "hq", "actions": []string{"live"}})
	h.must(root, "PUT", "/grants/g-pm", map[string]any{"subject": "pm", "device": "cam2", "actions": []string{"live"}})
	h.must(root, "PUT", "/grants/g-pmcrew", map[string]any{"subject": "pmcrew", "site": "lobby", "actions": []string{"live"}})
	h.must(viewer("alice"), "PUT", "/grants/g-dave", map[string]any{"subject": "dave", "site": "lobby", "role": "live_only_viewer"})
	return h
}

func TestAttackSiteAdminGrantWrites(t *testing.T) {
	h := siteAdminFixture(t)
	alice := viewer("alice")
	h.refuseAll(t, []attack{
		{"grant to a group holding herself (a grant of her own that outlives sa)", alice, "PUT", "/grants/x",
			map[string]any{"subject": "crew", "site": "lobby", "role": "site_admin"}, ErrForbidden, ""},
		{"grant to a group holding a privacy manager", alice, "PUT", "/grants/x",
			map[string]any{"subject": "pmcrew", "device": "cam2", "actions": []string{"live", "ptz"}}, ErrForbidden, ""},
		{"delete a group grant reaching a privacy manager", alice, "DELETE", "/grants/g-pmcrew", nil, ErrForbidden, ""},
		{"narrow a group grant reaching a privacy manager", alice, "PUT", "/grants/g-pmcrew",
			map[string]any{"subject": "pmcrew", "site": "lobby", "actions": []string{"live"}, "except_devices": []string{"cam2"}}, ErrForbidden, ""},
		{"a grant on the parent site", alice, "PUT", "/grants/x",
			map[string]any{"subject": "bob", "site": "hq", "actions": []string{"live"}}, ErrForbidden, ""},
		{"move her grant to a site she does not admin", alice, "PUT", "/grants/g-dave",
			map[string]any{"subject": "dave", "device": "cam3", "actions": []string{"live"}}, ErrForbidden, ""},
		{"move a parent-site grant into her site", alice, "PUT", "/grants/g-bob-hq",
			map[string]any{"subject": "bob", "site": "lobby", "actions": []string{"live"}}, ErrForbidden, ""},
		{"narrow a parent-site grant with except_devices", alice, "PUT", "/grants/g-bob-hq",
			map[string]any{"subject": "bob", "site": "hq", "actions": []string{"live"}, "except_devices": []string{"cam1"}}, ErrForbidden, ""},
		{"delete a privacy manager's grant", alice, "DELETE", "/grants/g-pm", nil, ErrForbidden, ""},
		{"repoint a privacy manager's grant to someone else", alice, "PUT", "/grants/g-pm",
			map[string]any{"subject": "carol", "device": "cam2", "actions": []string{"live"}}, ErrForbidden, ""},
		{"take over her own site_admin grant for someone else", alice, "PUT", "/grants/sa",
			map[string]any{"subject": "dave", "site": "lobby", "role": "site_admin"}, ErrForbidden, ""},
		{"delete her own site_admin grant", alice, "DELETE", "/grants/sa", nil, ErrForbidden, ""},
		{"manage_privacy, which she does not hold", alice, "PUT", "/grants/x",
			map[string]any{"subject": "dave", "device": "cam2", "actions": []string{"manage_privacy"}}, ErrForbidden, ""},
		{"notices, which she does not hold", alice, "PUT", "/grants/x",
			map[string]any{"subject": "dave", "device": "cam2", "actions": []string{"live", "notices"}}, ErrForbidden, ""},
		{"the read-only source field (a temporary grant)", alice, "PUT", "/grants/x",
			map[string]any{"subject": "dave", "device": "cam2", "actions": []string{"live"}, "source": "auto"}, nil, "source"},
		{"a device that does not exist", alice, "PUT", "/grants/x",
			map[string]any{"subject": "dave", "device": "nope", "actions": []string{"live"}}, ErrForbidden, ""},
	})
	// What she may do still works, and the refusals left the others' access.
	h.must(alice, "PUT", "/grants/g-carol", map[string]any{"subject": "carol", "device": "cam2", "actions": []string{"live", "ptz"},
		"schedule": []map[string]any{{"days": []string{"mon"}, "from": "08:00", "to": "09:00"}}})
	if !h.allowed("pm", "cam2", ActionLive) || !h.allowed("bob", "cam2", ActionLive) || !h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("a refused site-admin write took someone's access")
	}
}

func TestAttackSiteAdminPowerEndsWithItsGrant(t *testing.T) {
	h := siteAdminFixture(t)
	alice := viewer("alice")
	body := map[string]any{"subject": "dave", "site": "lobby", "role": "no_access"}
	// An armed-only site_admin grant makes her a site admin only while
	// the site is armed; an expired or not-yet-valid one, never.
	h.must(root, "PUT", "/grants/sa", map[string]any{"subject": "alice", "site": "lobby", "role": "site_admin", "condition": "armed"})
	h.refuseAll(t, []attack{
		{"armed-only site admin while disarmed: a no_access grant", alice, "PUT", "/grants/x", body, ErrForbidden, ""},
		{"armed-only site admin while disarmed: delete", alice, "DELETE", "/grants/g-dave", nil, ErrForbidden, ""},
	})
	h.must(root, "POST", "/sites/lobby/arm", nil)
	h.must(alice, "PUT", "/grants/x", body)
	h.must(root, "POST", "/sites/lobby/disarm", nil)
	h.must(root, "PUT", "/grants/sa", map[string]any{"subject": "alice", "site": "lobby", "role": "site_admin",
		"not_after": t0.Add(time.Hour).Format(time.RFC3339)})
	h.clk.Add(2 * time.Hour)
	h.refuseAll(t, []attack{
		{"expired site admin", alice, "PUT", "/grants/y", body, ErrForbidden, ""},
		{"expired site admin: delete", alice, "DELETE", "/grants/x", nil, ErrForbidden, ""},
	})
	h.must(root, "PUT", "/grants/sa", map[string]any{"subject": "alice", "site": "lobby", "role": "site_admin",
		"not_before": h.clk.Now().Add(time.Hour).Format(time.RFC3339)})
	h.refuseAll(t, []attack{{"not yet a site admin", alice, "PUT", "/grants/y", body, ErrForbidden, ""}})
}

func TestAttackSettingsHolder(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/subjects/inst", map[string]any{"kind": "installer", "sites": []string{"hq"}})
	h.must(root, "PUT", "/devices/cam9", map[string]any{"site": "hq", "kind": "camera", "source": "rtsp://cam:pw@10.0.0.9/s",
		"ptz": map[string]any{"onvif_url": "http://10.0.0.9/onvif/device_service", "username": "admin", "password": "pw"}})
	inst := viewer("inst")
	if !h.allowed("inst", "cam9", ActionSettings) {
		t.Fatal("the installer has no 8 hours on a new camera")
	}
	got := h.must(inst, "GET", "/devices/cam9", nil).(map[string]any)
	if raw, _ := json.Marshal(got); strings.Contains(string(raw), `"pw"`) || strings.Contains(string(raw), ":pw@") {
		t.Fatalf("a settings holder reads the device's passwords: %s", raw)
	}
	ptz := func(url, user, pass string) map[string]any {
		return map[string]any{"ptz": map[string]any{"onvif_url": url, "username": user, "password": pass}}
	}
	onvif := "http://10.0.0.9/onvif/device_service"
	h.refuseAll(t, []attack{
		{"repoint PTZ at her host with new credentials", inst, "PUT", "/devices/cam9", ptz("http://10.9.9.9/onvif", "admin", "x"), ErrForbidden, ""},
		{"repoint PTZ keeping the stored password", inst, "PUT", "/devices/cam9", ptz("http://10.9.9.9/onvif", "admin", RedactedPassword), ErrForbidden, ""},
		{"a new user with the stored password", inst, "PUT", "/devices/cam9", ptz(onvif, "other", RedactedPassword), nil, "ptz.password"},
		{"repoint the source keeping the password", inst, "PUT", "/devices/cam9", map[string]any{"source": "rtsp://cam:" + RedactedPassword + "@10.9.9.9/s"}, ErrForbidden, ""},
		{"move it to a site (8 more hours elsewhere)", inst, "PUT", "/devices/cam9", map[string]any{"site": "lobby"}, ErrForbidden, ""},
		{"turn it into a motion camera and back", inst, "PUT", "/devices/cam9", map[string]any{"kind": "motion_cam"}, ErrForbidden, ""},
		{"set the alarm window (read-only)", inst, "PUT", "/devices/cam9", map[string]any{"alarm_until": "2030-01-01T00:00:00Z"}, nil, "alarm_until"},
		{"spend the node's kernel memory on a socket buffer", inst, "PUT", "/devices/cam9", map[string]any{"udp_read_buffer": 64 << 20}, ErrForbidden, ""},
		{"a transport camgate does not speak", inst, "PUT", "/devices/cam9", map[string]any{"transport": "http"}, nil, "transport"},
		{"a camera it has no settings on", inst, "PUT", "/devices/cam1", map[string]any{"name": "x"}, ErrForbidden, ""},
		{"delete it", inst, "DELETE", "/devices/cam9", nil, ErrForbidden, ""},
	})
	// Recording is a camera setting (seed 002); disk stays bounded by
	// archive.retention and archive.max_bytes (PERMISSIONS.md).
	h.must(inst, "PUT", "/devices/cam9", map[string]any{"name": "Gate", "record": true})
	// So is how its media come: TCP for a camera whose UDP path loses packets.
	if d := h.must(inst, "PUT", "/devices/cam9", map[string]any{"name": "Gate", "record": true, "transport": "tcp"}).(map[string]any); d["transport"] != "tcp" {
		t.Fatalf("after a transport change: %v", d)
	}
	h.clk.Add(8*time.Hour + time.Second)
	h.refuseAll(t, []attack{
		{"after its 8 hours", inst, "PUT", "/devices/cam9", map[string]any{"record": false}, ErrForbidden, ""},
		{"read it back after its 8 hours", inst, "GET", "/devices/cam9", nil, ErrNotFound, ""},
	})
	if d, _ := h.s.Device("cam9"); d.PTZ.OnvifURL != onvif || d.PTZ.Password != "pw" || d.Source != "rtsp://cam:pw@10.0.0.9/s" || d.Site != "hq" {
		t.Fatalf("cam9 after the attacks: %+v %+v", d, d.PTZ)
	}
}

func TestAttackCompanyRights(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/subjects/monco", map[string]any{"kind": "company"})
	h.must(root, "PUT", "/subjects/otherco", map[string]any{"kind": "company"})
	h.must(root, "PUT", "/subjects/olga", map[string]any{"kind": "employee", "company": "monco", "rights": []string{"live"}})
	h.must(root, "PUT", "/subjects/ivan", map[string]any{"kind": "employee", "company": "otherco", "rights": []string{"live"}})
	monco := viewer("monco")
	h.refuseAll(t, []attack{
		{"an employee of another company", monco, "PUT", "/subjects/ivan", map[string]any{"rights": []string{"live", "archive"}}, ErrForbidden, ""},
		{"move an employee to another company", monco, "PUT", "/subjects/olga", map[string]any{"company": "otherco"}, ErrForbidden, ""},
		{"take another company's employee", monco, "PUT", "/subjects/ivan", map[string]any{"company": "monco"}, ErrForbidden, ""},
		{"turn an employee into a user", monco, "PUT", "/subjects/olga", map[string]any{"kind": "user"}, ErrForbidden, ""},
		{"make a new employee", monco, "PUT", "/subjects/newguy", map[string]any{"kind": "employee", "company": "monco", "rights": []string{"live"}}, ErrForbidden, ""},
		{"POST a new employee", monco, "POST", "/subjects", map[string]any{"id": "newguy", "kind": "employee", "company": "monco"}, ErrForbidden, ""},
		{"its own record", monco, "PUT", "/subjects/monco", map[string]any{"rights": []string{"live"}}, ErrForbidden, ""},
		{"exempt an employee from the integrator lock", monco, "PUT", "/subjects/olga", map[string]any{"restriction_exempt": true}, ErrForbidden, ""},
		{"an employee's org", monco, "PUT", "/subjects/olga", map[string]any{"org": "acme"}, ErrForbidden, ""},
		{"an employee's sites (8 hours on new cameras)", monco, "PUT", "/subjects/olga", map[string]any{"sites": []string{"hq"}}, ErrForbidden, ""},
		{"delete an employee", monco, "DELETE", "/subjects/olga", nil, ErrForbidden, ""},
		{"a right that does not exist", monco, "PUT", "/subjects/olga", map[string]any{"rights": []string{"everything"}}, nil, "rights"},
		{"the employee itself", viewer("olga"), "PUT", "/subjects/olga", map[string]any{"rights": []string{"live", "archive"}}, ErrForbidden, ""},
		{"a user posing as a company", viewer("alice"), "PUT", "/subjects/olga", map[string]any{"rights": []string{"archive"}}, ErrForbidden, ""},
	})
	h.must(monco, "PUT", "/subjects/olga", map[string]any{"rights": []string{"live", "archive"}})
	if s, _ := h.s.Subject("olga"); s.Kind != SubjectEmployee || s.Company != "monco" || strings.Join(s.Rights, ",") != "live,archive" {
		t.Fatalf("olga after her company's change: %+v", s)
	}
}

// individualAdmins: a1 and a2 are individual-access admins with roles:write
// (neither reports to the other); each has a subject and a camera of its
// own; a2's grant uses a2's role r2, root's grant uses root's role guard.
func individualAdmins(t *testing.T) (h *harness, a1, a2 Caller) {
	t.Helper()
	h = newHarness(t)
	h.base()
	h.must(root, "PUT", "/roles/ind", map[string]any{"actions": []string{},
		"sections": []string{"roles:write", "subjects:write", "grants:write", "devices:write", "groups:write", "audit:read"}, "individual_access": true})
	a1 = adminKey(t, h, "a1", map[string]any{"roles": []string{"ind"}})
	a2 = adminKey(t, h, "a2", map[string]any{"roles": []string{"ind"}})
	for _, x := range []struct {
		c        Caller
		sub, dev string
	}{{a1, "s1", "d1"}, {a2, "s2", "d2"}} {
		h.must(x.c, "PUT", "/subjects/"+x.sub, map[string]any{"kind": "user"})
		h.must(x.c, "PUT", "/devices/"+x.dev, map[string]any{"site": "hq", "source": "builtin:demo"})
	}
	h.must(a1, "PUT", "/roles/r1", map[string]any{"actions": []string{"live"}})
	h.must(a2, "PUT", "/roles/r2", map[string]any{"actions": []string{"live"}})
	h.must(root, "PUT", "/roles/guard", map[string]any{"actions": []string{"live"}})
	h.must(a2, "PUT", "/grants/g-s2", map[string]any{"subject": "s2", "device": "d2", "role": "r2"})
	h.must(root, "PUT", "/grants/g-bob", map[string]any{"subject": "bob", "device": "cam1", "role": "guard"})
	return h, a1, a2
}

func TestAttackRoleEditReachesOtherAdminsGrants(t *testing.T) {
	// A role edit reaches every grant that uses it at once: an
	// individual-access admin editing a role another admin's grants use
	// would change access it must not even see.
	h, a1, a2 := individualAdmins(t)
	wide := map[string]any{"actions": []string{"live", "archive", "download", "ptz"}}
	// a1 uses a2's role for its own subject: reading and using every role
	// stays allowed.
	h.must(a1, "PUT", "/grants/g-s1", map[string]any{"subject": "s1", "device": "d1", "role": "r2"})
	h.must(a2, "PUT", "/roles/r3", map[string]any{"actions": []string{"live"}})
	h.refuseAll(t, []attack{
		{"edit another admin's role its grants use", a1, "PUT", "/roles/r2", wide, ErrForbidden, ""},
		{"edit root's role root's grants use", a1, "PUT", "/roles/guard", wide, ErrForbidden, ""},
		{"edit another admin's unused role", a1, "PUT", "/roles/r3", wide, ErrForbidden, ""},
		{"delete another admin's unused role", a1, "DELETE", "/roles/r3", nil, ErrForbidden, ""},
		{"edit its own role, which another admin's grant uses", a2, "PUT", "/roles/r2", wide, ErrForbidden, ""},
	})
	if h.allowed("s2", "d2", ActionArchive) || h.allowed("bob", "cam1", ActionArchive) || h.allowed("s1", "d1", ActionArchive) {
		t.Fatal("a refused role edit widened someone's access")
	}
	// Its own role, used only by its own grants, it edits; root edits any.
	h.must(a1, "PUT", "/grants/g-s1", map[string]any{"subject": "s1", "device": "d1", "role": "r1"})
	h.must(a1, "PUT", "/roles/r1", wide)
	h.must(a2, "PUT", "/roles/r2", wide)
	h.must(root, "PUT", "/roles/guard", wide)
	if !h.allowed("s1", "d1", ActionArchive) || !h.allowed("s2", "d2", ActionArchive) {
		t.Fatal("an allowed role edit did not apply")
	}
	h.must(a2, "DELETE", "/roles/r3", nil)
}

func TestAttackBulkByPrivacyManagerStaysOnItsSites(t *testing.T) {
	h := siteAdminFixture(t)
	pm := viewer("pm")
	h.refuseAll(t, []attack{
		{"a camera of the parent site beside its own", pm, "POST", "/bulk-access",
			map[string]any{"subjects": []string{"bob"}, "devices": []string{"cam2", "cam1"}, "actions": []string{"live"}}, ErrForbidden, ""},
		{"a camera of another site", pm, "POST", "/bulk-access",
			map[string]any{"subjects": []string{"bob"}, "devices": []string{"cam3"}, "actions": []string{}}, ErrForbidden, ""},
		{"a site admin (not a privacy manager)", viewer("alice"), "POST", "/bulk-access",
			map[string]any{"subjects": []string{"bob"}, "devices": []string{"cam2"}, "actions": []string{}}, ErrForbidden, ""},
	})
	// On its own camera, bulk narrows bob's grant on the parent site for
	// that camera only: bob keeps cam1, outside the manager's sites.
	res := h.must(pm, "POST", "/bulk-access", map[string]any{"subjects": []string{"bob"}, "devices": []string{"cam2"}, "actions": []string{}}).(map[string]any)
	if n := res["narrowed"].([]any); len(n) != 1 || n[0] != "g-bob-hq" {
		t.Fatalf("narrowed %v", n)
	}
	if h.allowed("bob", "cam2", ActionLive) || !h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("bulk by lobby's privacy manager changed bob's access outside lobby")
	}
	if g := h.must(root, "GET", "/grants/g-bob-hq", nil).(map[string]any); g["site"] != "hq" || toStrings(g["except_devices"]) != "cam2" {
		t.Fatalf("g-bob-hq after the bulk: %v", g)
	}
}

func TestAttackBulkKeptLeaksNothingHidden(t *testing.T) {
	// What an individual-access admin's bulk reports (narrowed, kept)
	// names only what it may see: not another admin's grants, groups,
	// companies or sites.
	h, a1, _ := individualAdmins(t)
	h.must(root, "PUT", "/sites/secret-site", map[string]any{"org": "acme", "name": "S", "parent": "hq", "privacy_managers": []string{"s1"}})
	h.must(root, "PUT", "/groups/secret-team", map[string]any{"members": []string{"s1"}})
	h.must(root, "PUT", "/grants/secret-grant", map[string]any{"subject": "secret-team", "site": "hq", "actions": []string{"live"}})
	h.must(root, "PUT", "/grants/secret-own", map[string]any{"subject": "s1", "site": "hq", "actions": []string{"live"}})
	h.must(a1, "PUT", "/devices/d9", map[string]any{"site": "secret-site", "source": "builtin:demo"})
	out := h.must(a1, "POST", "/bulk-access", map[string]any{"subjects": []string{"s1"}, "devices": []string{"d9"}, "actions": []string{"live"}})
	raw, _ := json.Marshal(out)
	for _, hidden := range []string{"secret-grant", "secret-own", "secret-team", "secret-site", `"hq"`, "site hq"} {
		if strings.Contains(string(raw), hidden) {
			t.Errorf("an individual-access admin's bulk answer names %s: %s", hidden, raw)
		}
	}
	kept := out.(map[string]any)["kept"].([]any)
	if len(kept) != 2 {
		t.Fatalf("kept %v; want the privacy manager's access and the group's grant, unnamed", kept)
	}
}

func toStrings(v any) string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return strings.Join(out, ",")
}

func TestAttackTemporaryAccessRevealsNoHiddenInstaller(t *testing.T) {
	// An individual-access admin adding (or moving) a camera into a site
	// whose member installers another admin made: rule 6 gives them their
	// 8 hours, but the admin learns nothing about them from the grants.
	h, a1, _ := individualAdmins(t)
	h.must(root, "PUT", "/subjects/hidden-inst", map[string]any{"kind": "installer", "sites": []string{"hq"}})
	h.must(a1, "PUT", "/subjects/my-inst", map[string]any{"kind": "installer", "sites": []string{"hq"}})
	h.must(a1, "PUT", "/devices/newcam", map[string]any{"site": "hq", "kind": "camera", "source": "builtin:demo"})
	if !h.allowed("hidden-inst", "newcam", ActionSettings) || !h.allowed("my-inst", "newcam", ActionSettings) {
		t.Fatal("the member installers got no 8 hours")
	}
	raw, _ := json.Marshal(h.must(a1, "GET", "/grants", nil))
	if strings.Contains(string(raw), "hidden-inst") || !strings.Contains(string(raw), "my-inst") {
		t.Fatalf("a1's grants: %s; want its own installer's temporary grant and not the hidden one's", raw)
	}
	h.fails(a1, "GET", "/subjects/hidden-inst/temporary-access", nil, ErrNotFound, "")
}

func TestAttackRoleEditWithoutGrantsWrite(t *testing.T) {
	// An admin who manages role templates but not grants would change
	// every viewer's access through a role in use.
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/roles/templates", map[string]any{"actions": []string{}, "sections": []string{"roles:write"}})
	tm := adminKey(t, h, "tm", map[string]any{"roles": []string{"templates"}})
	h.must(root, "PUT", "/roles/guard", map[string]any{"actions": []string{"live"}})
	h.must(root, "PUT", "/grants/g-bob", map[string]any{"subject": "bob", "device": "cam1", "role": "guard"})
	h.refuseAll(t, []attack{
		{"widen a role grants use", tm, "PUT", "/roles/guard", map[string]any{"actions": []string{"live", "download"}}, ErrForbidden, ""},
		{"narrow a role grants use", tm, "PUT", "/roles/guard", map[string]any{"actions": []string{"sound"}}, ErrForbidden, ""},
	})
	if h.allowed("bob", "cam1", ActionDownload) || !h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("a refused role edit changed bob's access")
	}
	// The same actions in another order, a role no grant uses, and an
	// unused one's actions are its to change.
	h.must(tm, "PUT", "/roles/guard", map[string]any{"actions": []string{"live"}, "sections": []string{}})
	h.must(tm, "PUT", "/roles/spare", map[string]any{"actions": []string{"live"}})
	h.must(tm, "PUT", "/roles/spare", map[string]any{"actions": []string{"live", "download"}})
	h.must(tm, "DELETE", "/roles/spare", nil)
}

func TestAttackExceptDevicesIsNoExistenceOracle(t *testing.T) {
	// except_devices names devices: what a caller that may not see a
	// device gets must not depend on whether it exists.
	h := siteAdminFixture(t)
	alice, pm := viewer("alice"), viewer("pm")
	for _, c := range []Caller{alice, pm} {
		var errs []string
		for _, d := range []string{"cam3", "no-such-cam"} {
			rev := h.s.RevForTest()
			_, err := h.call(c, "PUT", "/grants/probe", map[string]any{"subject": "dave", "site": "lobby", "actions": []string{"live"}, "except_devices": []string{d}})
			if err == nil {
				t.Errorf("%s: a lobby grant excepting %s (not in lobby) was stored", c.Subject, d)
			}
			if h.s.RevForTest() != rev {
				t.Errorf("%s: a refused write changed the model", c.Subject)
			}
			errs = append(errs, strings.ReplaceAll(fmt.Sprint(err), d, "X"))
		}
		if errs[0] != errs[1] {
			t.Errorf("%s: an existing device elsewhere and a missing one answer differently: %q vs %q", c.Subject, errs[0], errs[1])
		}
	}
	h.must(alice, "PUT", "/grants/probe", map[string]any{"subject": "dave", "site": "lobby", "actions": []string{"live"}, "except_devices": []string{"cam2"}})

	ha, a1, _ := individualAdmins(t)
	ha.must(root, "PUT", "/roles/ind", map[string]any{"actions": []string{},
		"sections": []string{"roles:write", "subjects:write", "grants:write", "devices:write", "sites:write", "orgs:write"}, "individual_access": true})
	ha.must(root, "PUT", "/admins/a1", map[string]any{"roles": []string{"ind"}})
	ha.must(a1, "PUT", "/orgs/o1", map[string]any{"name": "O1"})
	ha.must(a1, "PUT", "/sites/s-a1", map[string]any{"org": "o1", "name": "A1"})
	var errs []string
	for _, d := range []string{"d2", "no-such-cam"} {
		_, err := ha.call(a1, "PUT", "/grants/probe", map[string]any{"subject": "s1", "site": "s-a1", "actions": []string{"live"}, "except_devices": []string{d}})
		if err == nil {
			t.Errorf("a1: a grant excepting %s was stored", d)
		}
		errs = append(errs, strings.ReplaceAll(fmt.Sprint(err), d, "X"))
	}
	if errs[0] != errs[1] {
		t.Errorf("a1: another admin's device and a missing one answer differently: %q vs %q", errs[0], errs[1])
	}
}

func TestAttackExceptDevicesAfterWhoMayWrite(t *testing.T) {
	// A viewer with no rights on a site learns nothing from except_devices
	// either: 403 whether the device is under the site or not.
	h := siteAdminFixture(t)
	for _, d := range []string{"cam1", "cam3", "no-such-cam"} {
		h.fails(viewer("bob"), "PUT", "/grants/probe", map[string]any{"subject": "dave", "site": "hq", "actions": []string{"live"}, "except_devices": []string{d}}, ErrForbidden, "")
	}
}

func TestAttackSiteAdminFootageLimit(t *testing.T) {
	// A site admin who reviews only the last day gives no one more.
	h := siteAdminFixture(t)
	alice := viewer("alice")
	h.must(root, "PUT", "/grants/sa", map[string]any{"subject": "alice", "site": "lobby", "role": "site_admin", "footage_within": "24h"})
	h.refuseAll(t, []attack{
		{"archive without a footage limit", alice, "PUT", "/grants/x", map[string]any{"subject": "dave", "device": "cam2", "actions": []string{"archive"}}, ErrForbidden, ""},
		{"download reaching back further", alice, "PUT", "/grants/x", map[string]any{"subject": "dave", "device": "cam2", "actions": []string{"download"}, "footage_within": "48h"}, ErrForbidden, ""},
	})
	h.must(alice, "PUT", "/grants/x", map[string]any{"subject": "dave", "device": "cam2", "actions": []string{"archive", "live"}, "footage_within": "24h"})
	h.must(alice, "PUT", "/grants/y", map[string]any{"subject": "dave", "device": "cam2", "actions": []string{"live", "ptz"}})
}

func TestAttackAuditOfAReusedId(t *testing.T) {
	// An individual-access admin recreating a deleted subject's (or
	// admin's) id reads the new one's activity, not the old one's.
	h, a1, _ := individualAdmins(t)
	h.must(root, "PUT", "/subjects/vip", map[string]any{"kind": "user"})
	h.call(viewer("vip"), "PUT", "/devices/cam1", map[string]any{"name": "old vip"})
	h.must(root, "DELETE", "/subjects/vip", nil)
	h.must(a1, "PUT", "/subjects/vip", map[string]any{"kind": "user"})
	h.call(viewer("vip"), "PUT", "/devices/d1", map[string]any{"name": "new vip"})
	var what []string
	for _, e := range h.must(a1, "GET", "/audit?limit=1000&who=subject:vip", nil).(map[string]any)["entries"].([]any) {
		what = append(what, e.(map[string]any)["what"].(string))
	}
	if strings.Join(what, ",") != "PUT devices/d1" {
		t.Fatalf("a1 reads vip's entries %v; want only the new vip's", what)
	}
	if n := len(h.must(root, "GET", "/audit?limit=1000&who=subject:vip", nil).(map[string]any)["entries"].([]any)); n != 2 {
		t.Fatalf("root reads %d of vip's entries; want both", n)
	}
}
