package gateway

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/camgate/camgate/internal/poll"
)

// GET /api/v1/cameras: an admin sees each camera's pull on this node and
// its viewers; a viewer token is refused; an unknown camera is a 404.
func TestCamerasAPI(t *testing.T) {
	n := startNode(t, t.TempDir())
	out := mustCall(t, n, "GET", "/cameras", "", 200)
	cams := out["cameras"].([]any)
	if len(cams) != 1 || cams[0].(map[string]any)["id"] != "cam1" || cams[0].(map[string]any)["upstream"] != nil {
		t.Fatalf("cameras %v; want cam1 with no pull", out)
	}
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/g", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	tok := viewerToken(t, "alice")
	var packets atomic.Int64
	c := playRTSPCounting(t, n, tok, &packets)
	defer c.Close()
	poll.Until(t, "cam1's pull and viewer to show", func() bool {
		one := mustCall(t, n, "GET", "/cameras/cam1", "", 200)
		up, _ := one["upstream"].(map[string]any)
		v, _ := one["viewers"].(map[string]any)
		return up != nil && up["readers"].(float64) >= 1 && v[""] == float64(1)
	})
	one := mustCall(t, n, "GET", "/cameras/cam1", "", 200)
	if c := fmt.Sprint(one["upstream"].(map[string]any)["codecs"]); c != "[video/H264 audio/Opus]" {
		t.Fatalf("cam1 (the demo: H264 + Opus) shows codecs %s", c)
	}
	if code, _ := n.callAs(t, tok, "GET", "/cameras", ""); code != 403 {
		t.Fatalf("a viewer lists cameras: %d", code)
	}
	if code, _ := n.call(t, "GET", "/cameras/nope", ""); code != 404 {
		t.Fatalf("an unknown camera: %d", code)
	}
	if code, _ := n.call(t, "POST", "/cameras", ""); code != 405 {
		t.Fatalf("POST /cameras: %d", code)
	}
}
