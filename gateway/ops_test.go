package gateway

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsAndMetrics runs a session, refusals, a share link and a PTZ-capable
// device through a node logging at debug level, then checks that no token,
// secret or password reached the logs, and that /metrics shows the activity.
func TestLogsAndMetrics(t *testing.T) {
	logs := &syncBuffer{}
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) {
		c.LogLevel = "debug"
	})
	// Restart the same configuration with a capturing logger.
	cfg := n.g.Config
	n.g.Close()
	g := &Gateway{Config: cfg, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := g.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	n = &node{g: g, api: "http://" + g.HTTPAddr().String() + "/api/v1", rtsp: "rtsp://" + g.RTSPAddr().String()}

	const ptzPassword = "onvif-secret-pw-123"
	mustCall(t, n, "PUT", "/devices/cam2", `{"site":"hq","kind":"camera","source":"rtsp://admin:cam-secret-pw@127.0.0.1:1/x","ptz":{"onvif_url":"http://127.0.0.1:1/onvif","username":"u","password":"`+ptzPassword+`"}}`, 200)
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/a", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	alice := viewerToken(t, "alice")
	c := playRTSP(t, n, alice)
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+viewerToken(t, "mallory")); err == nil {
		t.Fatal("mallory was admitted")
	}
	if _, err := probeCodecs(t, n.rtsp+"/cam2?token="+alice); err == nil {
		t.Fatal("alice was admitted to cam2")
	}
	link := mustCall(t, n, "POST", "/links", `{"device":"cam1","actions":["live"],"not_after":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`, 201)
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+link["token"].(string)); err != nil {
		t.Fatal(err)
	}
	if out := mustCall(t, n, "GET", "/devices/cam2", "", 200); strings.Contains(toJSON(out), ptzPassword) {
		t.Fatalf("a device read shows the PTZ password: %v", out)
	}

	res, err := http.Get("http://" + g.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`camgate_sessions{protocol="rtsp",camera="cam1"} 1`, `camgate_decisions_total{result="denied"}`,
		`camgate_decision_cache_total{layer="l1"}`, `camgate_upstream_up{camera="cam1"} 1`, "camgate_rtsp_bytes_sent_total",
		`camgate_link_verifications_total{result="allowed"} `, `camgate_hls_segment_seconds_bucket{le="+Inf"}`, "camgate_webrtc_gso ", "camgate_webrtc_send_refused_total 0\n"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
	}
	for _, zero := range []string{"camgate_rtsp_bytes_sent_total 0\n", `camgate_link_verifications_total{result="allowed"} 0` + "\n"} {
		if strings.Contains(string(body), zero) {
			t.Fatalf("/metrics did not count: %q", zero)
		}
	}
	c.Close()

	out := logs.String()
	if !strings.Contains(out, "session started") || !strings.Contains(out, "refused") {
		t.Fatalf("the logs lack session lines:\n%.2000s", out)
	}
	for name, secret := range map[string]string{
		"viewer token": alice, "link token": link["token"].(string), "hs256 secret": testSecret,
		"admin key": testAdminKey, "ptz password": ptzPassword, "camera password": "cam-secret-pw",
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
}

// TestOversizedBodies: a 12 MB JSON body is refused with 413 and changes
// nothing; a media object over the upload limit is refused too.
func TestOversizedBodies(t *testing.T) {
	n := startNode(t, t.TempDir())
	big := `{"subject":"alice","device":"cam1","actions":["live"],"pad":"` + strings.Repeat("x", 12<<20) + `"}`
	if code, _ := n.call(t, "PUT", "/grants/g-big", big); code != 413 {
		t.Fatalf("12 MB grant: %d, want 413", code)
	}
	if code, _ := n.call(t, "GET", "/grants/g-big", ""); code != 404 {
		t.Fatalf("the refused grant exists: %d", code)
	}
	req, _ := http.NewRequest("POST", n.api+"/devices/cam1/objects?kind=photo", strings.NewReader(strings.Repeat("y", 40<<20)))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	req.Header.Set("Content-Type", "image/jpeg")
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		res.Body.Close()
		if res.StatusCode != 413 {
			t.Fatalf("40 MB object: %d, want 413", res.StatusCode)
		}
	} // the server may also close the connection while the client is still sending: refused either way
	if code, _ := n.call(t, "GET", "/devices/cam1", ""); code != 200 {
		t.Fatalf("the node stopped answering after oversized bodies: %d", code)
	}
}
