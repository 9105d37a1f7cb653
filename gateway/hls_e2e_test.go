package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/camgate/camgate/internal/mediatest"
)

// TestHLSThroughGateway: ffprobe plays the live HLS URL with a viewer token;
// tracks follow `sound`; a revoke turns the session's next request into 403.
func TestHLSThroughGateway(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/a", `{"subject":"alice","device":"cam1","actions":["live","sound"]}`, 200)
	mustCall(t, n, "PUT", "/grants/b", `{"subject":"bob","device":"cam1","actions":["live"]}`, 200)
	base := "http://" + n.g.HTTPAddr().String() + "/hls/cam1/index.m3u8?token="
	for sub, want := range map[string]string{"alice": "h264,opus", "bob": "h264"} {
		codecs, _, err := mediatest.Probe(t, base+viewerToken(t, sub))
		if got := strings.Join(codecs, ","); err != nil || got != want {
			t.Fatalf("%s over HLS: %q %v, want %s", sub, got, err, want)
		}
	}
	for tok, want := range map[string]int{"garbage": 401, viewerToken(t, "carol"): 403} {
		res, err := http.Get(base + tok)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("HLS with token %.10s…: %d, want %d", tok, res.StatusCode, want)
		}
	}
	res, err := http.Get("http://" + n.g.HTTPAddr().String() + "/hls/nope/index.m3u8?token=" + viewerToken(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("unknown camera over HLS: %d", res.StatusCode)
	}
}
