package gateway

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/authz/token"
)

func TestReloadSwapsKeysAndReportsRestartKeys(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/a", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	oldTok := viewerToken(t, "alice")
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+oldTok); err != nil {
		t.Fatal(err)
	}
	cfg := n.g.Config
	cfg.Auth.ViewerJWT.HS256Secret = "another-secret-0123456789abcdef-0123456789"
	cfg.HTTP.Listen = "127.0.0.1:1" // needs a restart: reported, not applied
	restart, err := n.g.Reload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(restart, "http.listen") {
		t.Fatalf("restart list %v should name http.listen", restart)
	}
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+oldTok); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("token of the old secret after reload: %v", err)
	}
	newTok, err := token.MintHS256([]byte(cfg.Auth.ViewerJWT.HS256Secret), "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+newTok); err != nil {
		t.Fatalf("token of the new secret: %v", err)
	}
	// A bad configuration changes nothing.
	bad := cfg
	bad.Auth.ViewerJWT.HS256Secret = "short"
	if _, err := n.g.Reload(bad); err == nil {
		t.Fatal("a too-short secret was accepted")
	}
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+newTok); err != nil {
		t.Fatalf("after a refused reload: %v", err)
	}
}
