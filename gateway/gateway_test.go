package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	neturl "net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/authz/token"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
)

const (
	testSecret   = "0123456789abcdef0123456789abcdef-test"
	testAdminKey = "cg_admin_test_key_0123456789"
)

type node struct {
	g    *Gateway
	api  string
	rtsp string
}

// startNode runs a gateway on free ports with its own data folder.
func startNode(t testing.TB, dataDir string) *node {
	t.Helper()
	return startNodeWith(t, dataDir, nil)
}

// startNodeWith lets the test adjust the configuration before start.
func startNodeWith(t testing.TB, dataDir string, adjust func(*config.Config)) *node {
	t.Helper()
	return startNodeWithLogger(t, dataDir, adjust, nil)
}

// startNodeWithLogger also gives the gateway a logger (nil: discard).
func startNodeWithLogger(t testing.TB, dataDir string, adjust func(*config.Config), logger *slog.Logger) *node {
	t.Helper()
	return startGateway(t, &Gateway{Config: testConfig(dataDir, adjust), Logger: logger})
}

// testConfig is a node's configuration on free loopback ports, with the
// test secret, admin key and one demo camera, adjusted by the test.
func testConfig(dataDir string, adjust func(*config.Config)) config.Config {
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.RTSP.Listen = "127.0.0.1:0"
	cfg.RTSP.UDPRTPListen, cfg.RTSP.UDPRTCPListen = "", ""
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.WebRTC.UDPMuxListen = "127.0.0.1:0"
	cfg.WebRTC.IncludeLoopback = true
	cfg.Auth.ViewerJWT.HS256Secret = testSecret
	cfg.Auth.AdminKeys = []string{testAdminKey}
	cfg.Cameras = []config.Camera{{ID: "cam1", Site: "hq", Source: "builtin:demo"}}
	if adjust != nil {
		adjust(&cfg)
	}
	return cfg
}

// startGateway initializes g and stops it when the test ends.
func startGateway(t testing.TB, g *Gateway) *node {
	t.Helper()
	if err := g.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return &node{g: g, api: "http://" + g.HTTPAddr().String() + "/api/v1", rtsp: "rtsp://" + g.RTSPAddr().String()}
}

func (n *node) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	return n.callAs(t, testAdminKey, method, path, body)
}

// callAs calls the API with the given bearer credential.
func (n *node) callAs(t *testing.T, bearer, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, n.api+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

func mustCall(t *testing.T, n *node, method, path, body string, want int) map[string]any {
	t.Helper()
	code, out := n.call(t, method, path, body)
	if code != want && (want != 200 || code/100 != 2) { // 200 stands for any success
		t.Fatalf("%s %s: %d %v, want %d", method, path, code, out, want)
	}
	return out
}

func viewerToken(t testing.TB, sub string) string {
	t.Helper()
	tok, err := token.MintHS256([]byte(testSecret), sub, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// probeCodecs reads an RTSP(S) URL with ffprobe over TCP and returns its
// codecs, sorted and comma-separated.
func probeCodecs(t *testing.T, url string) (string, error) {
	t.Helper()
	codecs, stderr, err := mediatest.Probe(t, url, "-rtsp_transport", "tcp")
	if err != nil {
		// Callers look for a status ("401", "429") in the message: the URL
		// and its port (random, e.g. :34290) must not be able to match.
		stderr = strings.ReplaceAll(stderr, url, "<url>")
		if u, perr := neturl.Parse(url); perr == nil && u.Host != "" {
			stderr = strings.ReplaceAll(stderr, u.Host, "<host>")
		}
		return "", fmt.Errorf("%w: %s", err, stderr)
	}
	return strings.Join(codecs, ","), nil
}

// TestGrantWatchRevoke is the slice end to end: a grant through the API lets
// ffmpeg watch over RTSP; without `sound` there is no audio track; deleting
// the grant ends the open session.
func TestGrantWatchRevoke(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user","name":"Bob"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live","sound"]}`, 200)
	mustCall(t, n, "PUT", "/grants/g-bob", `{"subject":"bob","site":"hq","actions":["live"]}`, 200)

	alice, bob := viewerToken(t, "alice"), viewerToken(t, "bob")
	if got, err := probeCodecs(t, n.rtsp+"/cam1?token="+alice); err != nil || got != "h264,opus" {
		t.Fatalf("alice: %q %v", got, err)
	}
	if got, err := probeCodecs(t, n.rtsp+"/cam1?token="+bob); err != nil || got != "h264" {
		t.Fatalf("bob (site grant, no sound): %q %v", got, err)
	}
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+viewerToken(t, "carol")); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("carol without a grant: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", n.rtsp+"/cam1?token="+alice, "-f", "null", "-")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	poll.Until(t, "the session to be registered", func() bool { return n.g.Sessions().Len() == 1 })
	out := mustCall(t, n, "GET", "/sessions", "", 200)
	if s := fmt.Sprint(out["sessions"]); !strings.Contains(s, "alice") || !strings.Contains(s, "full") {
		t.Fatalf("sessions: %s", s)
	}
	mustCall(t, n, "DELETE", "/grants/g-alice", "", 200)
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("ffmpeg kept playing after the grant was deleted")
	}
	if l := n.g.Sessions().Len(); l != 0 {
		t.Fatalf("%d sessions left", l)
	}
}

func TestStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/g1", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	n.g.Close()
	n = startNode(t, dir)
	out := mustCall(t, n, "GET", "/check?subject=alice&device=cam1&action=live", "", 200)
	if out["allowed"] != true {
		t.Fatalf("after restart: %v", out)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSessionEndsAtGrantExpiry: a session admitted by a grant with not_after
// ends at that instant by time alone, with no write to trigger it.
func TestSessionEndsAtGrantExpiry(t *testing.T) {
	n := startNode(t, t.TempDir())
	until := time.Now().Add(2 * time.Second).UTC()
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/a", `{"subject":"alice","device":"cam1","actions":["live"],"not_after":"`+until.Format(time.RFC3339Nano)+`"}`, 200)
	c := playRTSP(t, n, viewerToken(t, "alice"))
	defer c.Close()
	if l := n.g.Sessions().List(); len(l) != 1 || l[0].ValidUntil.IsZero() {
		t.Fatalf("the session should carry the grant's valid_until: %+v", l)
	}
	waitClientEnded(t, c, "at the grant's not_after")
	if late := time.Since(until); late < 0 || late > 2*time.Second {
		t.Fatalf("session ended %v after not_after", late)
	}
}
