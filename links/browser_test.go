package links_test

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/links"
)

// The full playback test (the page plays the demo camera over WHEP and HLS)
// needs the gateway's WHEP and HLS servers; the integrator runs it. Here
// headless Chromium runs the page's script under its real CSP against fake
// endpoints, to check what a viewer sees when the media edges refuse, and
// that hls.js loads from camgate under that CSP.

type fakeEdges struct {
	mu       sync.Mutex
	whep     int    // status answered to POST /whep/{camera}
	hls      int    // status answered to /hls/...
	hlsDir   string // when set, /hls/{camera}/{file} serves files from it
	requests []string
	auth     []string
}

func (f *fakeEdges) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func serveReal(t *testing.T, s *links.Service, f *fakeEdges) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		parts := strings.Split(strings.Trim(path, "/"), "/")
		f.mu.Lock()
		f.requests = append(f.requests, string(ctx.Method())+" "+path)
		whep, hls := f.whep, f.hls
		if parts[0] == "whep" {
			f.auth = append(f.auth, string(ctx.Request.Header.Peek("Authorization")))
		}
		f.mu.Unlock()
		switch {
		case len(parts) == 3 && parts[0] == "s" && parts[1] == "assets":
			s.HandleAsset(ctx, parts[2])
		case len(parts) == 2 && parts[0] == "s":
			s.HandleViewerPage(ctx, parts[1])
		case parts[0] == "whep":
			ctx.SetStatusCode(whep)
			ctx.SetBodyString(`{"error":"fake"}`)
		case parts[0] == "hls" && len(parts) == 3 && f.hlsDir != "" && hls == 200:
			ctx.SendFile(filepath.Join(f.hlsDir, filepath.Base(parts[2])))
		case parts[0] == "hls":
			ctx.SetStatusCode(hls)
			ctx.SetBodyString(`{"error":"fake"}`)
		default:
			ctx.SetStatusCode(404)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// dumpDOM loads url in headless Chromium and returns the DOM once the page
// settled (virtual time lets the script's timers and fetches finish).
func dumpDOM(t *testing.T, url string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if bin, err = exec.LookPath("chromium-browser"); err != nil {
			t.Fatal("chromium is required: apt-get install -y chromium (or run scripts/test)")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--mute-audio", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=30000", "--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return string(out)
}

var attrRe = regexp.MustCompile(`<html[^>]*data-playback="([a-z]*)"[^>]*data-via="([a-z]*)"`)

func TestBrowserPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	e := newEnv(t, func(s *links.Service) { s.Now = time.Now })
	now := time.Now()
	l, err := e.svc.Create(root, links.CreateRequest{Device: "cam1", Actions: []string{"live"}, NotAfter: tp(now.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		whep, hls int
		via, text string
		hlsAsked  bool
		state     string
	}{
		// A refusal of the link is final: no point trying HLS.
		{"WHEP forbids", 403, 200, "whep", "no longer gives access", false, "error"},
		{"WHEP full", 429, 200, "whep", "Too many people", false, "error"},
		// WHEP broken: HLS through hls.js, which the CSP must let load.
		{"WHEP down, HLS forbids", 503, 403, "hls", "no longer gives access", true, "error"},
		{"WHEP down, HLS plays", 503, 200, "hls", "Playing live (HLS)", true, "playing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEdges{whep: tc.whep, hls: tc.hls}
			if tc.state == "playing" {
				f.hlsDir = hlsClip(t)
			}
			base := serveReal(t, e.svc, f)
			dom := dumpDOM(t, base+"/s/"+l.Token)
			m := attrRe.FindStringSubmatch(dom)
			if m == nil || m[1] != tc.state || m[2] != tc.via {
				t.Fatalf("playback state %v, want %s via %s; DOM:\n%s\nrequests %v", m, tc.state, tc.via, dom, f.seen())
			}
			if !strings.Contains(dom, tc.text) {
				t.Fatalf("status text lacks %q:\n%s", tc.text, dom)
			}
			seen := strings.Join(f.seen(), "\n")
			if !strings.Contains(seen, "POST /whep/cam1") {
				t.Fatalf("no WHEP offer: %s", seen)
			}
			if got := strings.Contains(seen, "/hls/cam1/index.m3u8"); got != tc.hlsAsked {
				t.Fatalf("HLS asked = %v, want %v: %s", got, tc.hlsAsked, seen)
			}
			if tc.hlsAsked && !strings.Contains(seen, "GET /s/assets/hls.min.js") {
				t.Fatalf("hls.js not loaded from camgate: %s", seen)
			}
			f.mu.Lock()
			auth := f.auth
			f.mu.Unlock()
			if len(auth) == 0 || auth[0] != "Bearer "+l.Token {
				t.Fatalf("WHEP Authorization %q", auth)
			}
		})
	}
}

// hlsClip writes a 4 s H264 HLS clip with ffmpeg.
func hlsClip(t *testing.T) string {
	t.Helper()
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg is required: apt-get install -y ffmpeg (or run scripts/test)")
	}
	dir := t.TempDir()
	out, err := exec.Command(ff, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-f", "hls", "-hls_time", "1",
		"-hls_playlist_type", "vod", filepath.Join(dir, "index.m3u8")).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	return dir
}
