package links_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Issue 15 hole 13: a duplicate key in a create body (at any depth, in any
// case) is a 400 naming it, and no link is created.
func TestAPIRefusesDuplicateKeys(t *testing.T) {
	e := newEnv(t)
	e.world.allowShare("bob", "cam1", true)
	e.world.allowShare("bob", "cam2", true)
	c := serve(t, e.svc)
	end := `"not_after":"` + t0.Add(time.Hour).Format(time.RFC3339) + `"`
	cases := []struct{ name, body, field string }{
		{"device twice", `{"device":"cam1","device":"cam2",` + end + `}`, "device"},
		{"actions twice in other case", `{"device":"cam1","actions":["live"],"ACTIONS":["live","download"],` + end + `}`, "ACTIONS"},
		{"not_after twice", `{"device":"cam1",` + end + `,"not_after":"2099-01-01T00:00:00Z"}`, "not_after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, c, "POST", "/api/v1/links", "bob", tc.body)
			var got struct{ Error string }
			if a.status != 400 || json.Unmarshal([]byte(a.body), &got) != nil || !strings.HasPrefix(got.Error, tc.field+":") ||
				!strings.Contains(got.Error, "duplicate key") {
				t.Fatalf("%d %s; want 400 naming %s as a duplicate key", a.status, a.body, tc.field)
			}
		})
	}
	if a := do(t, c, "GET", "/api/v1/links", "bob", ""); a.status != 200 || strings.TrimSpace(a.body) != "[]" {
		t.Fatalf("links after refused creates: %d %s; want none", a.status, a.body)
	}
}
