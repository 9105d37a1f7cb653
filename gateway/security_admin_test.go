package gateway

import (
	"fmt"
	"strings"
	"testing"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// With the permission store unreachable and no cached decision, a new
// viewer is refused with 503 on every edge (fail closed, and say why).
func TestStoreUnavailableIs503OnEveryEdge(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.Redis.URL = srv.URL })
	mustCall(t, n, "PUT", "/subjects/dave", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-dave", `{"subject":"dave","device":"cam1","actions":["live","archive"]}`, 200)
	offer := whepOffer(t)
	srv.Kill()
	poll.Until(t, "the node to report not ready", func() bool { return readyz(n) == 503 })
	for edge, got := range edgeStatuses(t, n, "cam1", viewerToken(t, "dave"), offer) {
		if got != 503 {
			t.Errorf("%s answered %d with the store down and nothing cached, want 503", edge, got)
		}
	}
}

// Holes 2 and 14 through the real API: no admin creates an admin wider
// than itself, and a privacy manager's token cannot appoint another.
func TestNoEscalationThroughTheAPI(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/roles/hr", `{"actions":[],"sections":["admins:write","devices:read"],"individual_access":true}`, 200)
	mustCall(t, n, "PUT", "/roles/wide", `{"actions":[],"sections":["*"]}`, 200)
	hr := mustCall(t, n, "PUT", "/admins/hr1", `{"roles":["hr"]}`, 200)["key"].(string)
	for name, body := range map[string]string{
		"individual access off":   `{"roles":["hr"],"individual_access":false}`,
		"a role it does not hold": `{"roles":["wide"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if code, out := n.callAs(t, hr, "PUT", "/admins/x", body); code != 403 {
				t.Fatalf("%s: %d %v, want 403", name, code, out)
			}
			if code, _ := n.call(t, "GET", "/admins/x", ""); code != 404 {
				t.Fatalf("a refused admin was stored: %d", code)
			}
		})
	}

	mustCall(t, n, "PUT", "/subjects/pm", `{"kind":"user","name":"PM"}`, 200)
	mustCall(t, n, "PUT", "/subjects/eve", `{"kind":"user","name":"Eve"}`, 200)
	mustCall(t, n, "PUT", "/subjects/ivan", `{"kind":"installer","name":"Ivan"}`, 200)
	mustCall(t, n, "PUT", "/sites/hq", `{"name":"hq","privacy_managers":["pm"]}`, 200)
	pm := viewerToken(t, "pm")
	if code, out := n.callAs(t, pm, "PUT", "/sites/hq", `{"name":"hq","privacy_managers":["pm","eve"]}`); code != 403 {
		t.Fatalf("a privacy manager appoints another: %d %v, want 403", code, out)
	}
	if code, out := n.call(t, "PUT", "/sites/hq", `{"name":"hq","privacy_managers":["pm","ivan"]}`); code != 400 || !strings.Contains(fmt.Sprint(out), "privacy_managers") {
		t.Fatalf("an installer as privacy manager: %d %v, want 400 naming privacy_managers", code, out)
	}
	if _, out := n.call(t, "GET", "/sites/hq", ""); fmt.Sprint(out["privacy_managers"]) != "[pm]" {
		t.Fatalf("privacy managers after the refused writes: %v", out["privacy_managers"])
	}
	// No existence oracle: another subject and a missing one look alike.
	eve := viewerToken(t, "eve")
	c1, _ := n.callAs(t, eve, "GET", "/subjects/ivan/temporary-access", "")
	c2, _ := n.callAs(t, eve, "GET", "/subjects/nobody/temporary-access", "")
	if c1 != c2 || c1/100 == 2 {
		t.Fatalf("temporary-access of an existing (%d) and a missing (%d) subject differ, or succeed", c1, c2)
	}
}
