package gateway

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// Seed 000, photos by scenarios, through the real HTTP edge: a device
// integration posting a scenario photo is refused (409, nothing stored)
// while the site's photo_scenarios is off, or its scenario_rule says armed
// and the site is disarmed; switching scenarios off keeps them, and on
// again they work ("Disabling … only deactivates all created scenarios …
// but does not delete them").
func TestScenarioPhotosFollowTheSiteSettings(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	mustCall(t, n, "PUT", "/devices/motion1", `{"site":"hq","kind":"motion_cam"}`, 200)
	base := strings.TrimSuffix(n.api, "/api/v1")
	jpeg := "\xff\xd8\xff\xe0" + strings.Repeat("x", 64)
	post := func(query string) (int, string) {
		code, _, body := httpStatusType(t, "POST", base+"/api/v1/devices/motion1/objects?kind=photo"+query, testAdminKey, jpeg, "image/jpeg")
		return code, body
	}
	stored := func() int {
		count := 0
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.Contains(p, "motion1") && strings.HasSuffix(p, ".json") {
				count++
			}
			return nil
		})
		return count
	}
	expect := func(step, query string, want int) {
		t.Helper()
		before := stored()
		code, body := post(query)
		if code != want {
			t.Fatalf("%s: %d %s, want %d", step, code, body, want)
		}
		if got := stored(); (want == 201) != (got == before+1) || (want != 201 && got != before) {
			t.Fatalf("%s: %d objects stored, had %d", step, got, before)
		}
		if want == 409 && !strings.Contains(body, "photo_scenarios") {
			t.Fatalf("%s: the refusal does not say why: %s", step, body)
		}
	}
	expect("scenarios off", "&scenario=door-open", 409)
	expect("a photo on demand is not a scenario photo", "", 201)
	mustCall(t, n, "PUT", "/sites/hq", `{"name":"HQ","photo_scenarios":true,"scenario_rule":"armed"}`, 200)
	expect("armed-only, disarmed", "&scenario=door-open", 409)
	mustCall(t, n, "POST", "/sites/hq/arm", "", 200)
	expect("armed-only, armed", "&scenario=door-open", 201)
	mustCall(t, n, "PUT", "/sites/hq", `{"name":"HQ","photo_scenarios":false,"scenario_rule":"armed","armed":true}`, 200)
	expect("switched off", "&scenario=door-open", 409)
	mustCall(t, n, "PUT", "/sites/hq", `{"name":"HQ","photo_scenarios":true,"scenario_rule":"armed","armed":true}`, 200)
	expect("switched on again", "&scenario=door-open", 201)
}
