package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"testing"
	"time"
)

// Seed 000 (a consumer alarm system's privacy settings). Each case quotes the
// seed sentence it enforces.

func seed000(t *testing.T) *harness {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/subjects/inst", map[string]any{"kind": "installer", "sites": []string{"hq"}})
	h.must(root, "PUT", "/subjects/monco", map[string]any{"kind": "company", "sites": []string{"hq"}})
	h.must(root, "PUT", "/subjects/emp", map[string]any{"kind": "employee", "company": "monco", "rights": []string{"live", "archive"}})
	h.must(root, "PUT", "/sites/hq", map[string]any{"org": "acme", "name": "HQ", "privacy_managers": []string{"alice"}})
	h.must(root, "PUT", "/devices/voice1", map[string]any{"site": "hq", "kind": "voice_module"})
	h.must(root, "PUT", "/devices/motion1", map[string]any{"site": "hq", "kind": "motion_cam"})
	return h
}

func TestSeed000PrivacyManagers(t *testing.T) {
	// "Privacy managers have full access to all video surveillance devices in
	// the system, and this access cannot be revoked."
	h := seed000(t)
	for _, a := range []Action{ActionLive, ActionArchive, ActionDownload, ActionSound, ActionPTZ, ActionManagePrivacy} {
		if !h.allowed("alice", "cam2", a) {
			t.Errorf("privacy manager alice lacks %v on cam2 (sub-site of hq)", a)
		}
	}
	h.must(root, "POST", "/bulk-access", map[string]any{"subjects": []string{"alice"}, "devices": []string{"cam1"}, "actions": []string{}})
	if d := h.s.Check("alice", "cam1", ActionArchive, t0); !d.Allowed {
		t.Fatalf("bulk revoke took a privacy manager's access away: %+v", d)
	}
	// "Only system admins or end users with permission to manage privacy
	// settings can configure these settings."
	h.fails(viewer("bob"), "PUT", "/grants/gb", map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live"}}, ErrForbidden, "")
	h.must(viewer("alice"), "PUT", "/grants/gb", map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live"}})
	if !h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("grant by privacy manager alice did not give bob live")
	}
	h.fails(viewer("bob"), "PUT", "/sites/hq", map[string]any{"org": "acme", "name": "HQ", "photos_on_demand": true}, ErrForbidden, "")
	h.must(viewer("alice"), "PUT", "/sites/hq", map[string]any{"org": "acme", "name": "HQ", "privacy_managers": []string{"alice"}, "photos_on_demand": true})
	h.fails(viewer("alice"), "PUT", "/sites/hq", map[string]any{"org": "acme", "name": "Renamed", "privacy_managers": []string{"alice"}}, ErrForbidden, "")
	h.fails(viewer("bob"), "DELETE", "/grants/gb", nil, ErrForbidden, "")
}

func TestSeed000CompanyEmployees(t *testing.T) {
	// "If a system owner has not granted specific permissions to a company, the
	// company employees will not have these permissions, even if they are
	// enabled in the Access rights menu."
	h := seed000(t)
	if h.allowed("emp", "cam1", ActionLive) {
		t.Fatal("employee has live though the company was granted nothing")
	}
	h.must(root, "PUT", "/grants/gc", map[string]any{"subject": "monco", "device": "cam1", "actions": []string{"live", "ptz"}})
	cases := []struct {
		a    Action
		want bool
	}{
		{ActionLive, true},     // company has it, rights have it
		{ActionArchive, false}, // rights have it, company lacks it
		{ActionPTZ, false},     // company has it, rights lack it
	}
	for _, c := range cases {
		if got := h.allowed("emp", "cam1", c.a); got != c.want {
			t.Errorf("employee %v = %v; want %v", c.a, got, c.want)
		}
	}
	h.must(root, "PUT", "/subjects/emp", map[string]any{"kind": "employee", "company": "monco", "rights": []string{"archive"}})
	if h.allowed("emp", "cam1", ActionLive) {
		t.Fatal("employee keeps live after the company removed it from the employee's rights")
	}
	// "companies can manage their employees' access rights": with the
	// company's own token, rights only, its own employees only.
	h.must(viewer("monco"), "PUT", "/subjects/emp", map[string]any{"rights": []string{"live", "ptz"}})
	if !h.allowed("emp", "cam1", ActionPTZ) || h.allowed("emp", "cam1", ActionArchive) {
		t.Fatal("the company's rights change did not take effect as company ∩ rights")
	}
	h.must(root, "PUT", "/subjects/other", map[string]any{"kind": "company"})
	h.must(root, "PUT", "/subjects/emp2", map[string]any{"kind": "employee", "company": "other", "rights": []string{"live"}})
	rev := h.s.RevForTest()
	h.fails(viewer("monco"), "PUT", "/subjects/emp2", map[string]any{"rights": []string{"live", "archive"}}, ErrForbidden, "")
	h.fails(viewer("monco"), "PUT", "/subjects/emp", map[string]any{"rights": []string{"live"}, "company": "other"}, ErrForbidden, "")
	h.fails(viewer("monco"), "PUT", "/subjects/emp", map[string]any{"rights": []string{"live"}, "kind": "user"}, ErrForbidden, "")
	h.fails(viewer("monco"), "PUT", "/subjects/newemp", map[string]any{"kind": "employee", "company": "monco"}, ErrForbidden, "")
	h.fails(viewer("emp"), "PUT", "/subjects/emp", map[string]any{"rights": []string{"live", "archive", "ptz"}}, ErrForbidden, "")
	h.fails(viewer("alice"), "PUT", "/subjects/emp", map[string]any{"rights": []string{"archive"}}, ErrForbidden, "")
	if h.s.RevForTest() != rev {
		t.Fatal("a refused rights change changed the model")
	}
}

func TestSeed000BulkAccess(t *testing.T) {
	// "Note that any unselected permissions will be revoked even if they were
	// previously granted."
	h := seed000(t)
	h.must(root, "PUT", "/grants/gm", map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live", "archive", "ptz"}})
	h.must(root, "POST", "/bulk-access", map[string]any{"subjects": []string{"bob", "alice"}, "devices": []string{"cam1", "cam2"},
		"actions": []string{"live", "sound"}})
	want := map[Action]bool{ActionLive: true, ActionSound: true, ActionArchive: false, ActionPTZ: false}
	for _, dev := range []string{"cam1", "cam2"} {
		for a, w := range want {
			if got := h.allowed("bob", dev, a); got != w {
				t.Errorf("after bulk bob %v on %s = %v; want %v", a, dev, got, w)
			}
		}
	}
	// "This feature can be applied only to one user category (i.e., Users,
	// Installers, Companies)"; a rejected bulk write changes nothing.
	rev := h.s.RevForTest()
	h.fails(root, "POST", "/bulk-access", map[string]any{"subjects": []string{"bob", "inst"}, "devices": []string{"cam1"}, "actions": []string{}}, nil, "subjects")
	h.fails(root, "POST", "/bulk-access", map[string]any{"subjects": []string{"bob"}, "devices": []string{"cam1", "nope"}, "actions": []string{}}, nil, "devices[1]")
	h.fails(root, "POST", "/bulk-access", map[string]any{"subjects": []string{"bob"}, "devices": []string{"cam1"}, "actions": []string{"live"}, "condition": "after_alarm"}, nil, "condition")
	if h.s.RevForTest() != rev || !h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("a rejected bulk write changed something")
	}
	// Privacy managers use bulk access; other viewers may not.
	h.fails(viewer("bob"), "POST", "/bulk-access", map[string]any{"subjects": []string{"bob"}, "devices": []string{"cam1"}, "actions": []string{"ptz"}}, ErrForbidden, "")
	h.must(viewer("alice"), "POST", "/bulk-access", map[string]any{"subjects": []string{"bob"}, "devices": []string{"cam1"}, "actions": []string{}})
	if h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("bulk with no actions left bob live on cam1")
	}
}

func TestSeed000BulkNarrowsOwnSiteGrants(t *testing.T) {
	// "Note that any unselected permissions will be revoked even if they were
	// previously granted": also when they came from the subject's own
	// site-wide grant. The site grant is narrowed for the selected devices,
	// and keeps giving what it gave on the others.
	h := seed000(t)
	h.must(root, "PUT", "/grants/site-bob", map[string]any{"subject": "bob", "site": "hq", "actions": []string{"live", "archive", "ptz"}})
	h.must(root, "PUT", "/groups/night", map[string]any{"members": []string{"bob"}})
	h.must(root, "PUT", "/grants/g-night", map[string]any{"subject": "night", "device": "cam1", "actions": []string{"notices"}})
	res := h.must(root, "POST", "/bulk-access", map[string]any{"subjects": []string{"bob", "alice"}, "devices": []string{"cam1"},
		"actions": []string{"live"}}).(map[string]any)
	for a, w := range map[Action]bool{ActionLive: true, ActionArchive: false, ActionPTZ: false} {
		if got := h.allowed("bob", "cam1", a); got != w {
			t.Errorf("after bulk bob %v on cam1 = %v; want %v", a, got, w)
		}
	}
	for _, a := range []Action{ActionLive, ActionArchive, ActionPTZ} {
		if !h.allowed("bob", "cam2", a) {
			t.Errorf("bulk on cam1 took %v on cam2 (not selected) from bob's site grant", a)
		}
	}
	if n := res["narrowed"].([]any); len(n) != 1 || n[0] != "site-bob" {
		t.Fatalf("narrowed %v; want [site-bob]", n)
	}
	g := h.must(root, "GET", "/grants/site-bob", nil).(map[string]any)
	if ex := g["except_devices"].([]any); len(ex) != 1 || ex[0] != "cam1" {
		t.Fatalf("site-bob except_devices %v", ex)
	}
	// "privacy managers have full access" and a group's grant are not the
	// subject's own: bulk leaves them and says so.
	kept := map[string]bool{}
	for _, k := range res["kept"].([]any) {
		k := k.(map[string]any)
		kept[k["subject"].(string)+" "+k["why"].(string)] = true
	}
	if !kept["alice privacy manager of site hq"] || !kept["bob group night"] {
		t.Fatalf("kept %v; want alice's privacy-manager access and bob's group grant", res["kept"])
	}
	if !h.allowed("bob", "cam1", ActionNotices) || !h.allowed("alice", "cam1", ActionArchive) {
		t.Fatal("bulk changed access that is not the subjects' own grants")
	}
	// A second bulk does not narrow twice; an empty one revokes all of bob's own.
	res = h.must(root, "POST", "/bulk-access", map[string]any{"subjects": []string{"bob"}, "devices": []string{"cam1"}, "actions": []string{}}).(map[string]any)
	if n := res["narrowed"].([]any); len(n) != 0 {
		t.Fatalf("second bulk narrowed %v again", n)
	}
	if h.allowed("bob", "cam1", ActionLive) || !h.allowed("bob", "cam2", ActionLive) {
		t.Fatal("empty bulk on cam1: bob keeps live on cam1 or lost it on cam2")
	}
	// except_devices is for site grants, and names devices.
	h.fails(root, "PUT", "/grants/bad", map[string]any{"subject": "bob", "device": "cam2", "actions": []string{"live"}, "except_devices": []string{"cam1"}}, nil, "except_devices")
	h.fails(root, "PUT", "/grants/bad", map[string]any{"subject": "bob", "site": "hq", "actions": []string{"live"}, "except_devices": []string{"nope"}}, nil, "except_devices[0]")
	// Deleting cam1 takes it off the exception list.
	h.must(root, "DELETE", "/devices/cam1", nil)
	if g := h.must(root, "GET", "/grants/site-bob", nil).(map[string]any); g["except_devices"] != nil {
		t.Fatalf("site-bob still excepts deleted cam1: %v", g["except_devices"])
	}
}

func TestSeed000Conditions(t *testing.T) {
	// "It is possible to specify when the granted permissions take effect:
	// always, when the device is in armed mode, or after an alarm is triggered
	// (available only for companies)."
	h := seed000(t)
	h.fails(root, "PUT", "/grants/ga", map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"archive"}, "condition": "after_alarm"}, nil, "condition")
	h.must(root, "PUT", "/grants/ga", map[string]any{"subject": "monco", "device": "cam1", "actions": []string{"archive"}, "condition": "after_alarm"})
	h.must(root, "PUT", "/grants/gr", map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live"}, "condition": "armed"})
	if d := h.s.Check("bob", "cam1", ActionLive, t0); d.Allowed {
		t.Fatalf("armed-only grant allows while disarmed: %+v", d)
	}
	h.must(root, "POST", "/sites/hq/arm", nil)
	if !h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("armed-only grant denies while armed")
	}
	h.must(root, "POST", "/sites/hq/disarm", nil)
	if h.allowed("bob", "cam1", ActionLive) {
		t.Fatal("armed-only grant allows after disarm")
	}
	if h.allowed("monco", "cam1", ActionArchive) {
		t.Fatal("after_alarm grant allows with no alarm")
	}
	h.must(root, "POST", "/devices/cam1/alarm", nil)
	d := h.s.Check("monco", "cam1", ActionArchive, h.clk.Now())
	if !d.Allowed || !d.ValidUntil.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("inside the alarm window: %+v; want allowed until the window ends (%v)", d, t0.Add(30*time.Minute))
	}
	h.clk.Add(31 * time.Minute)
	if h.allowed("monco", "cam1", ActionArchive) {
		t.Fatal("after_alarm grant allows after the alarm window closed")
	}
}

func TestSeed000PhotosAndVoiceModules(t *testing.T) {
	h := seed000(t)
	// "Enabling the Allow photos on demand option does not grant permissions
	// to take photos on demand to any user, installer, or company."
	h.must(root, "PUT", "/sites/hq", map[string]any{"org": "acme", "photos_on_demand": true})
	if h.allowed("bob", "motion1", ActionPhotoOnDemand) {
		t.Fatal("photos on demand allowed without a grant")
	}
	h.must(root, "PUT", "/grants/gp", map[string]any{"subject": "bob", "device": "motion1", "actions": []string{"photo_on_demand", "photo_view"}})
	if !h.allowed("bob", "motion1", ActionPhotoOnDemand) {
		t.Fatal("granted photo_on_demand denied while the site allows it")
	}
	h.must(root, "PUT", "/sites/hq", map[string]any{"org": "acme", "photos_on_demand": false})
	if d := h.s.Check("bob", "motion1", ActionPhotoOnDemand, t0); d.Allowed {
		t.Fatalf("photo_on_demand allowed while the site disallows photos on demand: %+v", d)
	}
	if !h.allowed("bob", "motion1", ActionPhotoView) {
		t.Fatal("photo_view lost with the photo-on-demand switch")
	}
	// "Permission to take and view photos is granted only on a permanent basis."
	h.fails(root, "PUT", "/grants/gt", map[string]any{"subject": "bob", "device": "motion1", "actions": []string{"photo_view"}, "not_after": t0.Add(time.Hour)}, nil, "not_after")
	// "Permission to play back and download recorded audio clips is granted
	// only on a permanent basis."
	h.fails(root, "PUT", "/grants/gv", map[string]any{"subject": "bob", "device": "voice1", "actions": []string{"audio_playback"}, "not_after": t0.Add(time.Hour)}, nil, "not_after")
	h.fails(root, "PUT", "/grants/gv", map[string]any{"subject": "bob", "device": "voice1", "actions": []string{"audio_playback"},
		"schedule": []map[string]any{{"days": []string{"mon"}, "from": "08:00", "to": "09:00"}}}, nil, "schedule")
	// "By default, no user, installer, or company has access to playing back
	// and downloading audio clips recorded by a voice module."
	if h.allowed("bob", "voice1", ActionAudioPlayback) || h.allowed("inst", "voice1", ActionAudioDownload) {
		t.Fatal("voice-module audio allowed by default")
	}
	h.must(root, "PUT", "/grants/gv", map[string]any{"subject": "bob", "device": "voice1", "actions": []string{"audio_playback"}})
	if !h.allowed("bob", "voice1", ActionAudioPlayback) || h.allowed("bob", "voice1", ActionAudioDownload) {
		t.Fatal("permanent audio_playback grant not applied exactly")
	}
}

func TestSeed000TemporaryAccess(t *testing.T) {
	// "After a video device is added to a space, the system automatically
	// provides installers and companies with eight hours of temporary access,
	// allowing them to configure the device. When the time expires, access
	// will be revoked unless a user with privacy management rights grants
	// permanent access."
	h := seed000(t)
	h.must(root, "PUT", "/subjects/carol", map[string]any{"kind": "user", "sites": []string{"hq"}})
	h.must(root, "PUT", "/devices/cam3", map[string]any{"site": "lobby", "source": "builtin:demo"})
	for _, s := range []string{"inst", "monco"} {
		d := h.s.Check(s, "cam3", ActionSettings, t0)
		if !d.Allowed || !d.ValidUntil.Equal(t0.Add(8*time.Hour)) {
			t.Errorf("%s on new cam3: %+v; want settings until %v", s, d, t0.Add(8*time.Hour))
		}
	}
	if h.allowed("carol", "cam3", ActionLive) {
		t.Error("a plain user member got temporary access")
	}
	// "If the selected installer has temporary access to camera video, the
	// corresponding status will be displayed in their profile."
	if tmp := h.must(viewer("alice"), "GET", "/subjects/inst/temporary-access", nil).([]any); len(tmp) != 1 || tmp[0].(map[string]any)["device"] != "cam3" {
		t.Errorf("inst's temporary access as seen by privacy manager alice = %v; want cam3", tmp)
	}
	h.clk.Add(8 * time.Hour)
	if h.allowed("inst", "cam3", ActionLive) {
		t.Error("temporary access outlived 8 hours")
	}
	// "PRO users can request temporary access to cameras from privacy managers."
	res := h.must(viewer("inst"), "POST", "/access-requests", map[string]any{"devices": []string{"cam1", "cam3"}, "actions": []string{"live", "archive"}, "duration": "2h"}).(map[string]any)
	id := res["id"].(string)
	h.fails(viewer("bob"), "POST", "/access-requests/"+id+"/approve", nil, ErrForbidden, "")
	h.fails(viewer("carol"), "POST", "/access-requests", map[string]any{"devices": []string{"cam1"}, "actions": []string{"live"}}, nil, "requester")
	if h.allowed("inst", "cam1", ActionArchive) {
		t.Fatal("a pending request gives access")
	}
	h.must(viewer("alice"), "POST", "/access-requests/"+id+"/approve", nil)
	now := h.clk.Now()
	if d := h.s.Check("inst", "cam1", ActionArchive, now); !d.Allowed || !d.ValidUntil.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("approved request: %+v; want archive until %v", d, now.Add(2*time.Hour))
	}
	h.fails(viewer("alice"), "POST", "/access-requests/"+id+"/deny", nil, ErrConflict, "")
	// "Select the required device and revoke some or all of its permissions.
	// Tap/click Remove access to all to revoke permissions to all devices."
	h.must(viewer("alice"), "DELETE", "/subjects/inst/temporary-access?device=cam1", nil)
	if h.allowed("inst", "cam1", ActionLive) || !h.allowed("inst", "cam3", ActionLive) {
		t.Fatal("revoking temporary access on cam1 did not remove exactly cam1")
	}
	h.must(root, "DELETE", "/subjects/inst/temporary-access", nil)
	if h.allowed("inst", "cam3", ActionLive) {
		t.Fatal("remove access to all left temporary access on cam3")
	}
}

func TestSeed000CameraMovedIntoASite(t *testing.T) {
	// "After a video device is added to a space, the system automatically
	// provides installers and companies with eight hours of temporary
	// access": a camera moved into the space is added to it too.
	h := seed000(t)
	h.must(root, "PUT", "/sites/annex", map[string]any{"org": "acme"})
	h.must(root, "PUT", "/devices/cam4", map[string]any{"site": "annex", "source": "builtin:demo"})
	if h.allowed("inst", "cam4", ActionSettings) {
		t.Fatal("an installer of hq reaches a camera in annex")
	}
	h.clk.Add(time.Hour)
	h.must(root, "PUT", "/devices/cam4", map[string]any{"site": "lobby", "source": "builtin:demo"})
	for _, s := range []string{"inst", "monco"} {
		if d := h.s.Check(s, "cam4", ActionSettings, h.clk.Now()); !d.Allowed || !d.ValidUntil.Equal(h.clk.Now().Add(8*time.Hour)) {
			t.Errorf("%s on cam4 moved into lobby: %+v; want settings for 8 hours", s, d)
		}
	}
	// Moving it within the tree its members already covered, or saving it
	// unchanged, gives nothing new.
	grants := func() int { return len(h.must(root, "GET", "/grants?device=cam4&source=auto", nil).([]any)) }
	n := grants()
	h.must(root, "PUT", "/devices/cam4", map[string]any{"site": "hq", "source": "builtin:demo", "name": "moved up"})
	h.must(root, "PUT", "/devices/cam4", map[string]any{"site": "hq", "source": "builtin:demo", "name": "renamed"})
	if grants() != n {
		t.Fatalf("moving cam4 inside hq's tree added temporary grants (%d → %d)", n, grants())
	}
}

func TestSeed000ScenarioPhotos(t *testing.T) {
	// "Select Scenario execution rules and configure when each scenario runs:
	// always or only when the system is armed."
	h := seed000(t)
	if h.s.ScenarioPhotos("motion1") {
		t.Fatal("scenario photos run while the site does not allow photos by scenarios")
	}
	h.must(root, "PUT", "/sites/hq", map[string]any{"org": "acme", "photo_scenarios": true, "scenario_rule": "armed"})
	if h.s.ScenarioPhotos("motion1") {
		t.Fatal("armed-only scenario photos run while disarmed")
	}
	h.must(root, "POST", "/sites/hq/arm", nil)
	if !h.s.ScenarioPhotos("motion1") {
		t.Fatal("armed-only scenario photos do not run while armed")
	}
	h.fails(root, "PUT", "/sites/hq", map[string]any{"org": "acme", "scenario_rule": "sometimes"}, nil, "scenario_rule")
}
