package main

import (
	"bytes"
	"context"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/authz/token"
	"github.com/camgate/camgate/gateway"
	"github.com/camgate/camgate/gateway/config"
)

// The demo's camera gives a snapshot to alice: the gateway with the demo's
// setup (camera `demo` on builtin:demo, alice's grant), the snapshot line
// printDemo prints, and a JPEG of the clip's size back.
func TestDemoSnapshot(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.RTSP.Listen, cfg.HTTP.Listen, cfg.WebRTC.UDPMuxListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.RTSP.UDPRTPListen, cfg.RTSP.UDPRTCPListen = "", ""
	cfg.Auth.ViewerJWT.HS256Secret = "demo-test-secret-0123456789abcdef"
	g := &gateway.Gateway{Config: cfg}
	if err := g.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := demoSetup(context.Background(), g.Authz()); err != nil {
		t.Fatal(err)
	}
	alice, err := token.MintHS256([]byte(cfg.Auth.ViewerJWT.HS256Secret), "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printDemo(&out, g, cfg, demoPrint{adminKey: "cg_admin_x", alice: alice, bob: alice, shareURL: "http://share", user: "cgdemo", pass: "pw"})
	var url string
	for _, line := range strings.Split(out.String(), "\n") {
		if i := strings.Index(line, `"http`); i >= 0 && strings.Contains(line, "snapshot.jpg") {
			url = strings.Trim(line[i:], `"`)
		}
	}
	if url == "" {
		t.Fatalf("no snapshot line in the demo's output:\n%s", out.String())
	}
	res, err := http.Get(strings.Replace(url, "localhost", "127.0.0.1", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != 640 || img.Bounds().Dy() != 360 {
		t.Fatalf("decoded %v: %v", img.Bounds(), err)
	}
}
