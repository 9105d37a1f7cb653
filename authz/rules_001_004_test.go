package authz_test

import (
	"errors"

	. "github.com/camgate/camgate/authz"

	"strings"
	"testing"
	"time"
)

// Seeds 001 (admin role templates), 002 (site roles), 003 (integrator
// restriction), 004 (camera sharing).

func adminKey(t *testing.T, h *harness, id string, body map[string]any) Caller {
	t.Helper()
	res, err := h.call(root, "PUT", "/admins/"+id, body)
	if err != nil {
		t.Fatalf("PUT admin %s: %v", id, err)
	}
	key := res.Body.(*Admin).Key
	c, ok := h.s.Authenticate(key)
	if key == "" || !ok || c.Admin != id {
		t.Fatalf("admin %s key %q authenticates as %+v %v", id, key, c, ok)
	}
	return c
}

func TestSeed001RoleEditReachesAdminOnlyWhenReassigned(t *testing.T) {
	// "If the edited role was previously assigned to an administrator, the
	// introduced changes won't be reflected in the administrator's profile. To
	// modify the permission set for this administrator, reassign the role."
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/roles/ops", map[string]any{"actions": []string{}, "sections": []string{"devices:read"}})
	a1 := adminKey(t, h, "a1", map[string]any{"roles": []string{"ops"}})
	h.must(a1, "GET", "/devices", nil)
	dev := map[string]any{"site": "hq", "source": "builtin:demo"}
	h.fails(a1, "PUT", "/devices/cam9", dev, ErrForbidden, "")
	h.fails(a1, "GET", "/grants", nil, ErrForbidden, "")
	h.must(root, "PUT", "/roles/ops", map[string]any{"actions": []string{}, "sections": []string{"devices:write"}})
	h.fails(a1, "PUT", "/devices/cam9", dev, ErrForbidden, "")
	h.must(root, "PUT", "/admins/a1", map[string]any{"roles": []string{"ops"}})
	h.must(a1, "PUT", "/devices/cam9", dev)
	if !h.s.AdminAllows(a1, "devices:read") || h.s.AdminAllows(a1, "links:write") || !h.s.AdminAllows(root, "links:write") || h.s.AdminAllows(viewer("alice"), "links:read") {
		t.Fatal("AdminAllows disagrees with the sections snapshot")
	}
	if _, ok := h.s.Authenticate("not-a-key"); ok {
		t.Fatal("a random key authenticates")
	}
	// An admin cannot hand out sections it lacks.
	h.must(root, "PUT", "/roles/auditor", map[string]any{"actions": []string{}, "sections": []string{"audit:read"}})
	h.must(root, "PUT", "/roles/hr", map[string]any{"actions": []string{}, "sections": []string{"admins:write"}})
	hr := adminKey(t, h, "hr1", map[string]any{"roles": []string{"hr"}})
	h.fails(hr, "PUT", "/admins/x", map[string]any{"roles": []string{"auditor"}}, ErrForbidden, "")
}

func TestSeed001IndividualAccess(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/roles/cams", map[string]any{"actions": []string{}, "sections": []string{"devices:write", "admins:write"}, "individual_access": true})
	h.must(root, "PUT", "/roles/plain", map[string]any{"actions": []string{}, "sections": []string{"devices:write"}})
	// "Automatic activation – if at least one assigned role has Individual
	// access enabled, the setting will be turned on for that administrator."
	a1 := adminKey(t, h, "a1", map[string]any{"roles": []string{"plain", "cams"}})
	if a := h.must(root, "GET", "/admins/a1", nil).(map[string]any); a["individual"] != true || a["key_hash"] != nil {
		t.Fatalf("admin a1 = %v; want individual on and no key hash", a)
	}
	// "Manual override: once roles are assigned, you retain the ability to
	// manually toggle the setting on or off within the individual
	// administrator's profile."
	h.must(root, "PUT", "/admins/a3", map[string]any{"roles": []string{"cams"}, "individual_access": false})
	if a := h.must(root, "GET", "/admins/a3", nil).(map[string]any); a["individual"] != false {
		t.Fatalf("manual override off ignored: %v", a)
	}
	// "On: the administrator can only view and manage data they created, along
	// with data from their direct reports (users and sub-administrators lower
	// in the hierarchy). All other data remains hidden."
	h.must(a1, "PUT", "/devices/mine", map[string]any{"site": "hq", "source": "builtin:demo"})
	a2 := adminKey(t, h, "a2", map[string]any{"roles": []string{"plain"}, "reports_to": "a1"})
	h.must(a2, "PUT", "/devices/reports", map[string]any{"site": "hq", "source": "builtin:demo"})
	list := h.must(a1, "GET", "/devices", nil).([]any)
	var ids []string
	for _, d := range list {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	if strings.Join(ids, ",") != "mine,reports" {
		t.Fatalf("individual-access admin a1 lists %v; want [mine reports]", ids)
	}
	h.fails(a1, "GET", "/devices/cam1", nil, ErrNotFound, "")
	// A write of a hidden record is the 404 of a missing one, as a GET.
	h.fails(a1, "PUT", "/devices/cam1", map[string]any{"site": "hq", "source": "builtin:demo"}, ErrNotFound, "")
	if got := h.must(a2, "GET", "/devices", nil).([]any); len(got) != 4 {
		t.Fatalf("admin a2 without individual access sees %d devices; want 4", len(got))
	}
}

func TestSeed001IndividualAccessFiltersOnlyTheListedSections(t *testing.T) {
	// "Access to the other sections (Provisioning, Documents, System
	// Settings and others) falls under the granted access levels": roles are
	// not in the seed's table, so an individual-access admin with roles:read
	// sees every role template, built-in and custom.
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/roles/ind", map[string]any{"actions": []string{},
		"sections": []string{"roles:read", "subjects:write", "grants:write", "devices:write", "audit:read"}, "individual_access": true})
	h.must(root, "PUT", "/roles/night-guard", map[string]any{"actions": []string{"live"}})
	a1 := adminKey(t, h, "a1", map[string]any{"roles": []string{"ind"}})
	roles := map[string]bool{}
	for _, r := range h.must(a1, "GET", "/roles", nil).([]any) {
		roles[r.(map[string]any)["id"].(string)] = true
	}
	if !roles["site_viewer"] || !roles["night-guard"] {
		t.Fatalf("individual-access admin sees roles %v; want the built-in and root's custom ones", roles)
	}
	h.must(a1, "GET", "/roles/night-guard", nil)
	h.must(a1, "PUT", "/subjects/dan", map[string]any{"kind": "user"})
	h.must(a1, "PUT", "/devices/dcam", map[string]any{"site": "hq", "source": "builtin:demo"})
	h.must(a1, "PUT", "/grants/g-dan", map[string]any{"subject": "dan", "device": "dcam", "role": "night-guard"})
	if !h.allowed("dan", "dcam", ActionLive) {
		t.Fatal("a grant with a role template by an individual-access admin gives nothing")
	}
	// The rest of its reach is unchanged: root's camera stays hidden.
	h.fails(a1, "GET", "/devices/cam1", nil, ErrNotFound, "")
	// "Reports > User activity: The report includes only the users
	// originated by the current administrator": dan's activity is in a1's
	// audit, alice's (created by root) is not.
	h.fails(viewer("dan"), "PUT", "/devices/dcam", map[string]any{"site": "hq", "source": "builtin:demo"}, ErrForbidden, "")
	h.fails(viewer("alice"), "PUT", "/devices/cam1", map[string]any{"site": "hq", "source": "builtin:demo"}, ErrForbidden, "")
	who := map[string]bool{}
	for _, e := range h.must(a1, "GET", "/audit?limit=1000", nil).(map[string]any)["entries"].([]any) {
		who[e.(map[string]any)["who"].(string)] = true
	}
	if !who["subject:dan"] || !who["admin:a1"] || who["subject:alice"] || who["root"] {
		t.Fatalf("individual-access audit shows %v; want a1's and dan's activity only", who)
	}
}

func TestSeed002SiteRoles(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/groups/viewers", map[string]any{"members": []string{"alice", "bob"}})
	h.must(root, "PUT", "/grants/gv", map[string]any{"subject": "viewers", "site": "hq", "role": "site_viewer"})
	// "Sub-sites inherit permissions from all sub-sites (and the ultimate
	// parent site) above them."
	if !h.allowed("bob", "cam2", ActionArchive) {
		t.Fatal("site_viewer on hq does not reach cam2 in sub-site lobby")
	}
	// "Permissions can always be upgraded, but never downgraded. ... this user
	// cannot be downgraded to a Live-Only Viewer (or any role below Site Viewer)."
	h.must(root, "PUT", "/grants/ga", map[string]any{"subject": "alice", "site": "lobby", "role": "live_only_viewer"})
	if !h.allowed("alice", "cam2", ActionArchive) {
		t.Fatal("a direct live_only_viewer role lowered alice's group site_viewer role")
	}
	h.must(root, "PUT", "/grants/ga", map[string]any{"subject": "alice", "site": "lobby", "role": "site_admin"})
	if !h.allowed("alice", "cam2", ActionPTZ) || h.allowed("bob", "cam2", ActionPTZ) {
		t.Fatal("raising alice to site_admin did not raise exactly alice")
	}
	// "the user is always granted the highest role granted to them directly,
	// or to one of the groups to which they belong."
	h.must(root, "PUT", "/groups/admins", map[string]any{"members": []string{"bob"}})
	h.must(root, "PUT", "/grants/gadm", map[string]any{"subject": "admins", "site": "lobby", "role": "site_admin"})
	if !h.allowed("bob", "cam2", ActionShare) || h.allowed("bob", "cam1", ActionShare) {
		t.Fatal("group site_admin on lobby not the highest for bob exactly there")
	}
	// "A user's role can only be downgraded if they are removed from the group
	// which assigns the highest level of access."
	h.must(root, "PUT", "/groups/admins", map[string]any{"members": []string{}})
	if h.allowed("bob", "cam2", ActionShare) || !h.allowed("bob", "cam2", ActionArchive) {
		t.Fatal("removing bob from admins did not drop him to site_viewer")
	}
	// "Live-Only Viewer: Permits users to ONLY view camera live streams (no
	// access to historical, archives, or Live Link sharing)."
	h.must(root, "PUT", "/subjects/carol", map[string]any{"kind": "user"})
	h.must(root, "PUT", "/grants/gc", map[string]any{"subject": "carol", "site": "hq", "role": "live_only_viewer"})
	for a, want := range map[Action]bool{ActionLive: true, ActionArchive: false, ActionDownload: false, ActionShare: false} {
		if got := h.allowed("carol", "cam1", a); got != want {
			t.Errorf("live_only_viewer %v = %v; want %v", a, got, want)
		}
	}
	// "No Access: Users will have no access to the site or sub-site's camera
	// live feeds, historical video, or archives."
	h.must(root, "PUT", "/grants/gc", map[string]any{"subject": "carol", "site": "hq", "role": "no_access"})
	if h.allowed("carol", "cam1", ActionLive) {
		t.Fatal("no_access gives live")
	}
	// "Sites and sub-sites do not inherit permissions from the organization."
	h.must(root, "PUT", "/subjects/dave", map[string]any{"kind": "user", "org": "acme"})
	if h.allowed("dave", "cam1", ActionLive) {
		t.Fatal("org membership gives dave live on an org camera")
	}
	// Editing a custom site role reaches every grant that uses it.
	h.must(root, "PUT", "/roles/guard", map[string]any{"actions": []string{"live"}})
	h.must(root, "PUT", "/grants/gc", map[string]any{"subject": "carol", "site": "hq", "role": "guard"})
	h.allowed("carol", "cam1", ActionArchive) // warm the cache
	h.must(root, "PUT", "/roles/guard", map[string]any{"actions": []string{"live", "archive"}})
	if !h.allowed("carol", "cam1", ActionArchive) {
		t.Fatal("editing a custom role did not reach its grants")
	}
	h.fails(root, "PUT", "/roles/site_admin", map[string]any{"actions": []string{"live"}}, nil, "id")
	h.fails(root, "DELETE", "/roles/guard", nil, ErrConflict, "")
}

func TestSeed002SiteAdminEditsSitePermissions(t *testing.T) {
	// "Site Admin: Permits users to view cameras, add cameras, archive and
	// share video, change camera settings, and edit site permissions."
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/subjects/carol", map[string]any{"kind": "user"})
	h.must(root, "PUT", "/subjects/pm", map[string]any{"kind": "user"})
	h.must(root, "PUT", "/sites/lobby", map[string]any{"parent": "hq", "name": "Lobby", "privacy_managers": []string{"pm"}})
	h.must(root, "PUT", "/grants/sa", map[string]any{"subject": "alice", "site": "hq", "role": "site_admin"})
	h.must(root, "PUT", "/roles/watch-and-notify", map[string]any{"actions": []string{"live", "notices"}})
	alice := viewer("alice")
	// Edit site permissions: up to what alice holds herself.
	h.must(alice, "PUT", "/grants/g-bob", map[string]any{"subject": "bob", "site": "hq", "role": "site_viewer"})
	if !h.allowed("bob", "cam1", ActionArchive) {
		t.Fatal("a site admin's grant gives nothing")
	}
	h.must(alice, "PUT", "/grants/g-bob", map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live", "ptz"}})
	h.must(alice, "DELETE", "/grants/g-bob", nil)
	if h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("a site admin's delete left the grant")
	}
	rev := h.s.RevForTest()
	for _, tc := range []struct {
		name string
		c    Caller
		path string
		body map[string]any
	}{
		{"more than she holds (notices is not in site_admin)", alice, "/grants/x", map[string]any{"subject": "bob", "site": "hq", "actions": []string{"live", "notices"}}},
		{"a role above hers", alice, "/grants/x", map[string]any{"subject": "bob", "device": "cam1", "role": "watch-and-notify"}},
		{"herself", alice, "/grants/x", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"}}},
		{"a privacy manager's rights", alice, "/grants/x", map[string]any{"subject": "pm", "device": "cam2", "actions": []string{"live"}}},
		{"a site grant reaching a privacy manager's sub-site", alice, "/grants/x", map[string]any{"subject": "pm", "site": "hq", "actions": []string{"live"}}},
		{"a viewer who is no site admin", viewer("bob"), "/grants/x", map[string]any{"subject": "carol", "device": "cam1", "actions": []string{"live"}}},
		{"a site she is not admin of", alice, "/grants/x", map[string]any{"subject": "bob", "device": "cam9", "actions": []string{"live"}}},
	} {
		_, err := h.call(tc.c, "PUT", tc.path, tc.body)
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: err %v; want 403", tc.name, err)
		}
	}
	if h.s.RevForTest() != rev {
		t.Fatal("a refused site-admin write changed the model")
	}
	// Once the role ends, so does the power.
	h.must(root, "DELETE", "/grants/sa", nil)
	h.fails(alice, "PUT", "/grants/g-bob", map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live"}}, ErrForbidden, "")
}

func TestSeed002SettingsChangeCameraSettings(t *testing.T) {
	// "change camera settings": a viewer with settings on a camera changes
	// its name, recording and PTZ, never its site or source.
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/grants/sa", map[string]any{"subject": "alice", "site": "hq", "role": "site_admin"})
	alice := viewer("alice")
	if d := h.must(alice, "GET", "/devices/cam1", nil).(map[string]any); d["id"] != "cam1" {
		t.Fatalf("a settings holder reads back %v", d)
	}
	h.must(alice, "PUT", "/devices/cam1", map[string]any{"name": "Front door", "record": true})
	if d := h.must(root, "GET", "/devices/cam1", nil).(map[string]any); d["name"] != "Front door" || d["record"] != true || d["site"] != "hq" || d["source"] != "rtsp://10.0.0.1/s1" {
		t.Fatalf("after alice's settings change: %v", d)
	}
	rev := h.s.RevForTest()
	h.fails(alice, "PUT", "/devices/cam1", map[string]any{"site": "lobby"}, ErrForbidden, "")
	h.fails(alice, "PUT", "/devices/cam1", map[string]any{"source": "rtsp://attacker.example/x"}, ErrForbidden, "")
	h.fails(alice, "PUT", "/devices/cam1", map[string]any{"kind": "motion_cam"}, ErrForbidden, "")
	// The ONVIF address is dialled by the gateway, with credentials: an
	// address is an admin's to set, like the source.
	h.fails(alice, "PUT", "/devices/cam1", map[string]any{"ptz": map[string]any{"onvif_url": "http://127.0.0.1:6379/", "username": "x", "password": "y"}}, ErrForbidden, "")
	if h.s.RevForTest() != rev {
		t.Fatal("a refused settings write changed the model")
	}
	h.must(root, "PUT", "/devices/ptz1", map[string]any{"site": "hq", "source": "builtin:demo",
		"ptz": map[string]any{"onvif_url": "http://10.0.0.5/onvif/device_service", "username": "admin", "password": "pw"}})
	h.must(alice, "PUT", "/devices/ptz1", map[string]any{"name": "Gate"})
	h.must(alice, "PUT", "/devices/ptz1", map[string]any{"name": "Gate", "ptz": map[string]any{"onvif_url": "http://10.0.0.5/onvif/device_service", "username": "operator", "password": "new-pw"}})
	h.fails(alice, "PUT", "/devices/ptz1", map[string]any{"ptz": map[string]any{"onvif_url": "http://10.0.0.6/onvif/device_service", "username": "operator", "password": "new-pw"}}, ErrForbidden, "")
	if d, _ := h.s.Device("ptz1"); d.Name != "Gate" || d.PTZ == nil || d.PTZ.Username != "operator" || d.PTZ.Password != "new-pw" || d.PTZ.OnvifURL != "http://10.0.0.5/onvif/device_service" {
		t.Fatalf("ptz1 after alice's settings: %+v %+v", d, d.PTZ)
	}
	rev = h.s.RevForTest()
	h.fails(alice, "PUT", "/devices/new", map[string]any{"site": "hq", "source": "builtin:demo"}, ErrForbidden, "")
	h.fails(alice, "DELETE", "/devices/cam1", nil, ErrForbidden, "")
	h.fails(viewer("bob"), "PUT", "/devices/cam1", map[string]any{"name": "x"}, ErrForbidden, "")
	h.fails(viewer("bob"), "GET", "/devices/cam1", nil, ErrNotFound, "")
	if h.s.RevForTest() != rev {
		t.Fatal("a refused settings write changed the model")
	}
	h.fails(alice, "GET", "/devices", nil, ErrForbidden, "")
}

func TestSeed003IntegratorRestriction(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/orgs/prov", map[string]any{"name": "Integrator Inc"})
	h.must(root, "PUT", "/subjects/integ", map[string]any{"kind": "integrator", "org": "prov"})
	h.must(root, "PUT", "/subjects/vip", map[string]any{"kind": "integrator", "org": "prov", "restriction_exempt": true})
	for _, s := range []string{"integ", "vip"} {
		h.must(root, "PUT", "/grants/g-"+s, map[string]any{"subject": s, "site": "hq", "role": "site_viewer"})
	}
	// "integrator-level users are now restricted from accessing client
	// accounts by default."
	if d := h.s.Check("integ", "cam1", ActionLive, t0); d.Allowed || !strings.HasPrefix(d.Reason, "integrator_restriction") {
		t.Fatalf("integrator on a restricted client: %+v; want denied by integrator_restriction", d)
	}
	// "the client account must be unrestricted by a client administrator user
	// before the account can be viewed by an integrator."
	h.must(root, "POST", "/orgs/acme/allow-provider", nil)
	// t0 is 10:00 UTC = 05:00 at UTC−5; the next midnight there is 05:00 UTC tomorrow.
	midnight := time.Date(2026, 3, 5, 5, 0, 0, 0, time.UTC)
	d := h.s.Check("integ", "cam2", ActionArchive, t0)
	if !d.Allowed || !d.ValidUntil.Equal(midnight) {
		t.Fatalf("after allow-provider: %+v; want allowed until %v", d, midnight)
	}
	// "all client accounts with cameras move to the restricted state at
	// midnight Eastern Standard Time (UTC-5) every day."
	h.clk.Set(midnight)
	if h.allowed("integ", "cam2", ActionArchive) {
		t.Fatal("the allowance outlived midnight UTC−5")
	}
	// "you can request that your account be added to the privacy setting
	// exclusion list."
	if !h.allowed("vip", "cam1", ActionLive) {
		t.Fatal("a restriction_exempt integrator is restricted")
	}
	// The restriction time zone is the org's.
	h.must(root, "PUT", "/orgs/acme", map[string]any{"restriction_tz": "Europe/Kyiv"})
	h.must(root, "POST", "/orgs/acme/allow-provider", nil)
	kyiv, _ := time.LoadLocation("Europe/Kyiv")
	if d := h.s.Check("integ", "cam1", ActionLive, h.clk.Now()); !d.Allowed || !d.ValidUntil.Equal(time.Date(2026, 3, 6, 0, 0, 0, 0, kyiv)) {
		t.Fatalf("allowance in Europe/Kyiv: %+v", d)
	}
	h.fails(root, "PUT", "/orgs/acme", map[string]any{"restriction_tz": "Mars/Olympus"}, nil, "restriction_tz")
	// "the changes described in the previous section are not a permanent
	// solution and are reverted within 24 hours": the lock cannot be
	// switched off for good.
	rev := h.s.RevForTest()
	h.fails(root, "PUT", "/orgs/acme", map[string]any{"provider_restriction": false}, nil, "provider_restriction")
	h.fails(root, "POST", "/orgs", map[string]any{"id": "open", "provider_restriction": false}, nil, "provider_restriction")
	if h.s.RevForTest() != rev {
		t.Fatal("a refused provider_restriction write changed the model")
	}
	h.must(root, "PUT", "/orgs/acme", map[string]any{"restriction_tz": "Europe/Kyiv", "provider_restriction": true})
	h.clk.Set(time.Date(2026, 3, 6, 0, 0, 0, 0, kyiv))
	if h.allowed("integ", "cam1", ActionLive) {
		t.Fatal("the allowance outlived midnight in Europe/Kyiv")
	}
	h.fails(root, "PUT", "/subjects/bob", map[string]any{"kind": "user", "restriction_exempt": true}, nil, "restriction_exempt")
}

func TestSeed004Shares(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "role": "site_admin"})
	// "enter the e-mail of a user registered at the site."
	h.fails(viewer("alice"), "POST", "/shares", map[string]any{"device": "cam1", "recipient_email": "nobody@example.com", "actions": []string{"live"}}, nil, "recipient_email")
	// "Possible levels of access to your cameras": Online, Archive, Notices, Archive Download.
	h.fails(viewer("alice"), "POST", "/shares", map[string]any{"device": "cam1", "recipient_email": "bob@example.com", "actions": []string{"ptz"}}, nil, "actions")
	h.fails(viewer("bob"), "POST", "/shares", map[string]any{"device": "cam1", "recipient_email": "alice@example.com", "actions": []string{"live"}}, nil, "owner")
	res := h.must(viewer("alice"), "POST", "/shares", map[string]any{"device": "cam1", "recipient_email": "bob@example.com", "actions": []string{"live", "archive"},
		"schedule":     []map[string]any{{"days": []string{"mon", "tue", "wed", "thu", "fri"}, "from": "08:00", "to": "18:00"}},
		"active_until": t0.Add(48 * time.Hour)}).(map[string]any)
	id := res["id"].(string)
	// "You can either accept or reject this offer." A pending share counts for nothing.
	if h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("a pending share gives access")
	}
	h.fails(viewer("carol"), "POST", "/shares/"+id+"/accept", nil, ErrForbidden, "")
	h.must(viewer("bob"), "POST", "/shares/"+id+"/reject", nil)
	if h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("a rejected share gives access")
	}
	// "You can add the rejected cameras ... select the camera and click on the “accept” link."
	h.must(viewer("bob"), "POST", "/shares/"+id+"/accept", nil)
	d := h.s.Check("bob", "cam1", ActionLive, t0)
	if !d.Allowed || !d.ValidUntil.Equal(time.Date(2026, 3, 4, 18, 0, 0, 0, time.UTC)) || !strings.Contains(d.Reason, id) {
		t.Fatalf("accepted share inside its schedule: %+v; want allowed until 18:00 naming %s", d, id)
	}
	// "If you accept the offer, the camera will appear in the list “Cameras shared with me”."
	mine := h.must(viewer("bob"), "GET", "/shares?recipient=bob&state=accepted", nil).([]any)
	if len(mine) != 1 || mine[0].(map[string]any)["device"] != "cam1" {
		t.Fatalf("shared with me = %v; want cam1", mine)
	}
	if others := h.must(viewer("carol"), "GET", "/shares", nil).([]any); len(others) != 0 {
		t.Fatalf("another viewer lists bob's shares: %v", others)
	}
	// "change the access schedule (the “Schedule” button), the activity time
	// (the “active until” button), and you can also revoke the access (the
	// “delete” button)."
	if h.s.Check("bob", "cam1", ActionLive, time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)).Allowed {
		t.Fatal("share allows on Saturday outside its schedule")
	}
	if h.s.Check("bob", "cam1", ActionLive, t0.Add(48*time.Hour)).Allowed {
		t.Fatal("share allows after active_until")
	}
	if h.allowed("bob", "cam1", ActionDownload) {
		t.Fatal("share gives download it does not carry")
	}
	h.must(viewer("alice"), "DELETE", "/shares/"+id, nil)
	if h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("a deleted share still gives access")
	}
}

func TestRule12SoundOnlyAddsToViewing(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/grants/g", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"sound"}})
	if d := h.s.Check("alice", "cam1", ActionSound, t0); d.Allowed || !strings.HasPrefix(d.Reason, "sound_needs_view") {
		t.Fatalf("sound alone: %+v; want denied by sound_needs_view", d)
	}
	h.must(root, "PUT", "/grants/g", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"sound", "archive"}})
	if !h.allowed("alice", "cam1", ActionSound) {
		t.Fatal("sound with archive denied")
	}
}

func TestFootageWithin(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/grants/g", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"archive"}, "footage_within": "24h"})
	if !h.s.CheckFootage("alice", "cam1", ActionArchive, t0, t0.Add(-23*time.Hour)).Allowed {
		t.Fatal("footage 23h old denied under footage_within 24h")
	}
	if d := h.s.CheckFootage("alice", "cam1", ActionArchive, t0, t0.Add(-25*time.Hour)); d.Allowed || !strings.HasPrefix(d.Reason, "footage_within") {
		t.Fatalf("footage 25h old: %+v; want denied by footage_within", d)
	}
	got := h.must(root, "GET", "/check?subject=alice&device=cam1&action=archive&footage="+t0.Add(-25*time.Hour).Format(time.RFC3339), nil).(map[string]any)
	if got["allowed"] != false {
		t.Fatalf("/check with footage = %v", got)
	}
}

func TestViewerMayCheckOnlyItself(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(viewer("alice"), "GET", "/check?device=cam1&action=live", nil)
	h.fails(viewer("alice"), "GET", "/check?subject=bob&device=cam1&action=live", nil, ErrForbidden, "")
	h.fails(viewer("alice"), "GET", "/audit", nil, ErrForbidden, "")
}

func TestAuditRecordsWritesAndDenials(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.fails(viewer("bob"), "PUT", "/grants/x", map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live"}}, ErrForbidden, "")
	h.s.RecordAudit(AuditEntry{Who: "subject:bob", What: "live cam1", Why: "default_deny"})
	page := h.must(root, "GET", "/audit?limit=3", nil).(map[string]any)
	entries := page["entries"].([]any)
	if len(entries) != 3 || page["next"] == "" {
		t.Fatalf("first page = %v; want 3 entries and a cursor", page)
	}
	first := entries[0].(map[string]any)
	if first["who"] != "root" || first["what"] != "PUT orgs/acme" || first["allowed"] != true {
		t.Fatalf("first audit entry = %v; want root's PUT orgs/acme", first)
	}
	denied := h.must(root, "GET", "/audit?allowed=false", nil).(map[string]any)["entries"].([]any)
	if len(denied) != 2 {
		t.Fatalf("denials = %v; want the API 403 and the recorded live denial", denied)
	}
	if w := denied[0].(map[string]any); w["who"] != "subject:bob" || w["what"] != "PUT grants/x" {
		t.Fatalf("denial = %v", w)
	}
	var seen int
	for cursor := ""; ; {
		p := h.must(root, "GET", "/audit?limit=2&after="+cursor, nil).(map[string]any)
		seen += len(p["entries"].([]any))
		if cursor = p["next"].(string); cursor == "" {
			break
		}
	}
	if all := h.must(root, "GET", "/audit?limit=1000", nil).(map[string]any)["entries"].([]any); seen != len(all) {
		t.Fatalf("paging saw %d entries; want %d", seen, len(all))
	}
}

func TestAuditSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.s.RecordAudit(AuditEntry{Who: "subject:bob", What: "live cam1", Why: "default_deny"})
	h.restart()
	h.must(root, "PUT", "/subjects/zoe", map[string]any{"kind": "user"})
	entries := h.must(root, "GET", "/audit?limit=1000", nil).(map[string]any)["entries"].([]any)
	if len(entries) != 9 {
		t.Fatalf("after restart the audit has %d entries; want the 7 setup writes, the denial and the new write", len(entries))
	}
	last, denial := entries[8].(map[string]any), entries[7].(map[string]any)
	if denial["what"] != "live cam1" || last["what"] != "PUT subjects/zoe" || last["seq"].(float64) != 9 {
		t.Fatalf("audit after restart ends with %v, %v", denial, last)
	}
}
