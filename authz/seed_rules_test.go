package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"strings"
	"testing"
	"time"
)

// TestSeedRules is the table of permission rules: one row per seed sentence
// that states a rule, each with the writes that set it up and the decisions
// an operator would then see. Multi-step flows (accept after reject, approve,
// revoke) are in the TestSeed0xx scenario tests.

type step struct {
	c      Caller
	method string
	path   string
	body   any
	field  string // expect a 400 naming it
}

type expect struct {
	subject, device string
	a               Action
	at              time.Duration // after t0
	allowed         bool
	reason          string        // prefix of the reason
	until           time.Duration // valid_until after t0; 0 = no time limit; -1 = not checked
}

func TestSeedRules(t *testing.T) {
	g := func(body map[string]any) step { return step{c: root, method: "POST", path: "/grants", body: body} }
	rows := []struct {
		seed, sentence string
		steps          []step
		expect         []expect
	}{
		{"000", "Privacy managers have full access to all video surveillance devices in the system, and this access cannot be revoked.",
			[]step{{c: root, method: "POST", path: "/bulk-access", body: map[string]any{"subjects": []string{"alice"}, "devices": []string{"cam1"}, "actions": []string{}}}},
			[]expect{{"alice", "cam1", ActionPTZ, 0, true, "privacy_manager", 0}, {"alice", "cam2", ActionDownload, 0, true, "privacy_manager", 0},
				{"alice", "voice1", ActionAudioPlayback, 0, false, "default_deny", 0}}},
		{"000", "If a system owner has not granted specific permissions to a company, the company employees will not have these permissions, even if they are enabled in the Access rights menu.",
			[]step{g(map[string]any{"subject": "monco", "device": "cam1", "actions": []string{"live", "ptz"}})},
			[]expect{{"emp", "cam1", ActionLive, 0, true, "company_employee", 0}, {"emp", "cam1", ActionArchive, 0, false, "default_deny", 0},
				{"emp", "cam1", ActionPTZ, 0, false, "default_deny", 0}}},
		{"000", "Note that any unselected permissions will be revoked even if they were previously granted.",
			[]step{g(map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live", "archive"}}),
				{c: root, method: "POST", path: "/bulk-access", body: map[string]any{"subjects": []string{"bob"}, "devices": []string{"cam1"}, "actions": []string{"live"}}}},
			[]expect{{"bob", "cam1", ActionLive, 0, true, "grant", 0}, {"bob", "cam1", ActionArchive, 0, false, "default_deny", 0}}},
		{"000", "This feature can be applied only to one user category (i.e., Users, Installers, Companies)",
			[]step{{c: root, method: "POST", path: "/bulk-access", body: map[string]any{"subjects": []string{"bob", "inst"}, "devices": []string{"cam1"}, "actions": []string{"live"}}, field: "subjects"}},
			[]expect{{"bob", "cam1", ActionLive, 0, false, "default_deny", 0}}},
		{"000", "Enabling the Allow photos on demand option does not grant permissions to take photos on demand to any user, installer, or company.",
			[]step{{c: root, method: "PUT", path: "/sites/hq", body: map[string]any{"org": "acme", "privacy_managers": []string{"alice"}, "photos_on_demand": true}}},
			[]expect{{"bob", "motion1", ActionPhotoOnDemand, 0, false, "default_deny", 0}}},
		{"000", "photo on demand only while the site allows it (Allow photos on demand)",
			[]step{g(map[string]any{"subject": "bob", "device": "motion1", "actions": []string{"photo_on_demand"}})},
			[]expect{{"bob", "motion1", ActionPhotoOnDemand, 0, false, "photo_on_demand_disabled", 0}}},
		{"000", "after an alarm is triggered (available only for companies)",
			[]step{{c: root, method: "POST", path: "/grants", body: map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"archive"}, "condition": "after_alarm"}, field: "condition"},
				g(map[string]any{"subject": "monco", "device": "cam1", "actions": []string{"archive"}, "condition": "after_alarm"}),
				{c: root, method: "POST", path: "/devices/cam1/alarm"}},
			[]expect{{"monco", "cam1", ActionArchive, 0, true, "grant", 30 * time.Minute}, {"monco", "cam1", ActionArchive, 30 * time.Minute, false, "condition_after_alarm", 0},
				{"bob", "cam1", ActionArchive, 0, false, "default_deny", 0}}},
		{"000", "when the device is in armed mode",
			[]step{g(map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live"}, "condition": "armed"})},
			[]expect{{"bob", "cam1", ActionLive, 0, false, "condition_armed", 0}}},
		{"000", "Permission to play back and download recorded audio clips is granted only on a permanent basis.",
			[]step{{c: root, method: "POST", path: "/grants", body: map[string]any{"subject": "bob", "device": "voice1", "actions": []string{"audio_download"}, "not_after": t0.Add(time.Hour)}, field: "not_after"}},
			[]expect{{"bob", "voice1", ActionAudioDownload, 0, false, "default_deny", 0}}},
		{"000", "After a video device is added to a space, the system automatically provides installers and companies with eight hours of temporary access",
			[]step{{c: root, method: "PUT", path: "/devices/cam3", body: map[string]any{"site": "hq", "source": "builtin:demo"}}},
			[]expect{{"inst", "cam3", ActionSettings, 0, true, "temporary_access", 8 * time.Hour}, {"monco", "cam3", ActionLive, 0, true, "temporary_access", 8 * time.Hour},
				{"inst", "cam3", ActionLive, 8 * time.Hour, false, "default_deny", 0}, {"bob", "cam3", ActionLive, 0, false, "default_deny", 0}}},
		{"002", "Sub-sites inherit permissions from all sub-sites (and the ultimate parent site) above them.",
			[]step{g(map[string]any{"subject": "bob", "site": "hq", "role": "site_viewer"})},
			[]expect{{"bob", "cam2", ActionArchive, 0, true, "role", 0}, {"bob", "cam2", ActionPTZ, 0, false, "default_deny", 0}}},
		{"002", "the user is always granted the highest role granted to them directly, or to one of the groups to which they belong.",
			[]step{{c: root, method: "PUT", path: "/groups/crew", body: map[string]any{"members": []string{"bob"}}},
				g(map[string]any{"subject": "crew", "site": "hq", "role": "site_viewer"}), g(map[string]any{"subject": "bob", "site": "hq", "role": "live_only_viewer"})},
			[]expect{{"bob", "cam1", ActionDownload, 0, true, "role", 0}}},
		{"002", "Live-Only Viewer: Permits users to ONLY view camera live streams (no access to historical, archives, or Live Link sharing).",
			[]step{g(map[string]any{"subject": "bob", "site": "hq", "role": "live_only_viewer"})},
			[]expect{{"bob", "cam1", ActionLive, 0, true, "role", 0}, {"bob", "cam1", ActionArchive, 0, false, "default_deny", 0}, {"bob", "cam1", ActionShare, 0, false, "default_deny", 0}}},
		{"002", "No Access: Users will have no access to the site or sub-site's camera live feeds, historical video, or archives.",
			[]step{g(map[string]any{"subject": "bob", "site": "hq", "role": "no_access"})},
			[]expect{{"bob", "cam2", ActionLive, 0, false, "default_deny", 0}}},
		{"003", "all client accounts with cameras move to the restricted state at midnight Eastern Standard Time (UTC-5) every day.",
			[]step{g(map[string]any{"subject": "integ", "site": "hq", "role": "site_viewer"}), {c: root, method: "POST", path: "/orgs/acme/allow-provider"}},
			[]expect{{"integ", "cam1", ActionLive, 0, true, "role", 19 * time.Hour}, {"integ", "cam1", ActionLive, 19 * time.Hour, false, "integrator_restriction", 0}}},
		{"003", "integrator-level users are now restricted from accessing client accounts by default.",
			[]step{g(map[string]any{"subject": "integ", "site": "hq", "role": "site_viewer"}), g(map[string]any{"subject": "vip", "site": "hq", "role": "site_viewer"})},
			[]expect{{"integ", "cam1", ActionLive, 0, false, "integrator_restriction", 0}, {"vip", "cam1", ActionLive, 0, true, "role", 0}}},
		{"004", "“Online” allows the selected user to view your camera in real-time mode; “Archive” allows the selected user to view the videos from the camera",
			[]step{g(map[string]any{"subject": "alice", "device": "cam1", "role": "site_admin"}),
				{c: root, method: "POST", path: "/shares", body: map[string]any{"id": "sh1", "device": "cam1", "owner": "alice", "recipient_email": "bob@example.com", "actions": []string{"live", "archive"}}},
				{c: viewer("bob"), method: "POST", path: "/shares/sh1/accept"}},
			[]expect{{"bob", "cam1", ActionArchive, 0, true, "share", 0}, {"bob", "cam1", ActionDownload, 0, false, "default_deny", 0}}},
	}
	for _, row := range rows {
		t.Run(row.seed+"/"+row.sentence[:min(40, len(row.sentence))], func(t *testing.T) {
			t.Log(row.seed + `: "` + row.sentence + `"`)
			h := newMemHarness(t)
			h.base()
			seedFixture(h)
			for i, st := range row.steps {
				_, err := h.call(st.c, st.method, st.path, st.body)
				switch fe, isField := err.(*FieldError); {
				case st.field != "" && (!isField || fe.Field != st.field):
					t.Fatalf("step %d %s %s: %v; want a 400 naming %s", i, st.method, st.path, err, st.field)
				case st.field == "" && err != nil:
					t.Fatalf("step %d %s %s: %v", i, st.method, st.path, err)
				}
			}
			for _, e := range row.expect {
				d := h.s.Check(e.subject, e.device, e.a, t0.Add(e.at))
				var until time.Time
				if e.until > 0 {
					until = t0.Add(e.until)
				}
				if d.Allowed != e.allowed || !strings.HasPrefix(d.Reason, e.reason) || (e.until >= 0 && !d.ValidUntil.Equal(until)) {
					t.Errorf("%s %s %v at t0+%v = %+v; want allowed=%v reason %s… valid_until %v", e.subject, e.device, e.a, e.at, d, e.allowed, e.reason, until)
				}
			}
		})
	}
}

// seedFixture adds the subjects and devices the seed rows use: installer and
// company members of hq, an employee, integrators of another org, a voice
// module and a motion camera, and alice as privacy manager of hq.
func seedFixture(h *harness) {
	h.must(root, "PUT", "/subjects/inst", map[string]any{"kind": "installer", "sites": []string{"hq"}})
	h.must(root, "PUT", "/subjects/monco", map[string]any{"kind": "company", "sites": []string{"hq"}})
	h.must(root, "PUT", "/subjects/emp", map[string]any{"kind": "employee", "company": "monco", "rights": []string{"live", "archive"}})
	h.must(root, "PUT", "/orgs/prov", map[string]any{})
	h.must(root, "PUT", "/subjects/integ", map[string]any{"kind": "integrator", "org": "prov"})
	h.must(root, "PUT", "/subjects/vip", map[string]any{"kind": "integrator", "org": "prov", "restriction_exempt": true})
	h.must(root, "PUT", "/sites/hq", map[string]any{"org": "acme", "privacy_managers": []string{"alice"}})
	h.must(root, "PUT", "/devices/voice1", map[string]any{"site": "hq", "kind": "voice_module"})
	h.must(root, "PUT", "/devices/motion1", map[string]any{"site": "hq", "kind": "motion_cam"})
}
