package gateway

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/camgate/camgate/internal/mediatest"
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

// A camera's transport and UDP buffer come from its device record: pulled
// over UDP into a 4 KiB buffer, a 9 Mbit/s camera really loses packets,
// and the API and the metrics count them. A transport camgate does not
// know is a 400 naming the field, and changes nothing.
func TestCameraTransportAndLossShown(t *testing.T) {
	up := mediatest.StartUpstreamUDP(t)
	mediatest.Publish(t, up, mediatest.NoisyClip())
	n := startNode(t, t.TempDir())
	site := mustCall(t, n, "GET", "/devices/cam1", "", 200)["site"]
	mustCall(t, n, "PUT", "/devices/camu", fmt.Sprintf(`{"site":%q,"source":%q,"transport":"udp","udp_read_buffer":4096}`, site, up.URL()), 200)
	if code, body := n.call(t, "PUT", "/devices/camu", fmt.Sprintf(`{"site":%q,"source":%q,"transport":"quic"}`, site, up.URL())); code != 400 || !strings.Contains(fmt.Sprint(body["error"]), "transport") {
		t.Fatalf("transport quic: %d %v, want 400 naming transport", code, body)
	}
	if d := mustCall(t, n, "GET", "/devices/camu", "", 200); d["transport"] != "udp" || d["udp_read_buffer"] != float64(4096) {
		t.Fatalf("device after a refused write: %v", d)
	}
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/g", `{"subject":"alice","device":"camu","actions":["live"]}`, 200)
	c, err := dialRTSP(t, n.rtsp+"/camu?token="+viewerToken(t, "alice"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var upstream map[string]any
	poll.Until(t, "camu's packet loss to show", func() bool {
		upstream, _ = mustCall(t, n, "GET", "/cameras/camu", "", 200)["upstream"].(map[string]any)
		lost, _ := upstream["packets_lost"].(float64)
		return lost > 0
	})
	if upstream["transport"] != "UDP" {
		t.Fatalf("upstream %v: want transport UDP", upstream)
	}
	_, _, metrics := httpStatus(t, "GET", strings.TrimSuffix(n.api, "/api/v1")+"/metrics", "", "")
	if !regexp.MustCompile(`camgate_upstream_packets_lost_total\{camera="camu"\} [1-9]`).MatchString(metrics) {
		t.Fatalf("metrics do not count camu's loss:\n%s", metrics)
	}
}
