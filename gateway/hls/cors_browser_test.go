package hls

import (
	"encoding/json"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/internal/browsertest"
)

// crossOriginPage plays ?src= with hls.js and keeps in window.st what it saw.
// With ?preflight=1 every request carries an Authorization header, which
// makes the browser send a CORS preflight first (as a player that adds
// headers does).
const crossOriginPage = `<!doctype html><html><body>
<video id="v" muted autoplay playsinline></video>
<script src="/hls.min.js"></script>
<script>
const q = new URLSearchParams(location.search);
window.st = {state: Hls.isSupported() ? 'loading' : 'error', detail: '', code: -1};
const cfg = {lowLatencyMode: true};
if (q.get('preflight')) {
  cfg.xhrSetup = (xhr, url) => { xhr.open('GET', url, true); xhr.setRequestHeader('Authorization', 'Bearer unused'); };
}
const hls = new Hls(cfg);
hls.on(Hls.Events.ERROR, (e, d) => {
  if (d.fatal) { st.state = 'error'; st.detail = d.type + ' ' + d.details; st.code = d.response ? d.response.code : -1; }
});
hls.loadSource(q.get('src'));
hls.attachMedia(document.getElementById('v'));
document.getElementById('v').play().catch(() => {});
</script></body></html>`

const crossOriginState = `return JSON.stringify({state: st.state, detail: st.detail, code: st.code,
  time: document.getElementById('v').currentTime, audio: hls.audioTracks.length});`

type crossOriginResult struct {
	State  string  `json:"state"`
	Detail string  `json:"detail"`
	Code   int     `json:"code"`
	Time   float64 `json:"time"`
	Audio  int     `json:"audio"`
}

// servePage serves the player page and hls.js on its own loopback port: an
// origin other than the HLS server's.
func servePage(t *testing.T) string {
	t.Helper()
	script := hlsJS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/player.html":
			ctx.SetContentType("text/html")
			ctx.SetBodyString(crossOriginPage)
		case "/hls.min.js":
			ctx.SetContentType("application/javascript")
			ctx.SetBody(script)
		default:
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// TestBrowserPlaysCrossOrigin plays camgate's HLS in headless Chromium (web
// security on) with hls.js from a page on another origin, the way a web app
// embeds a camera. The last case is the control: with an Allow-Origin that
// is not the page's, the same browser refuses the stream, so the passing
// cases are the CORS headers' doing.
func TestBrowserPlaysCrossOrigin(t *testing.T) {
	t.Parallel()
	page := servePage(t)
	open := newHarness(t, nil)
	closed := newHarness(t, func(s *Server) { s.AllowOrigin = "http://127.0.0.1:1" })
	b := browsertest.New(t)

	cases := []struct {
		name      string
		hls       *harness
		token     string
		preflight bool
		wantCode  int // 0: plays; else the fatal error's HTTP status as the page reads it
		wantError bool
	}{
		{name: "plays", hls: open, token: "alice"},
		{name: "the page reads a 403", hls: open, token: "eve", wantError: true, wantCode: 403},
		// Last on its server: a page's requests may outlive its navigation.
		{name: "plays after a preflight", hls: open, token: "alice", preflight: true},
		{name: "origin not allowed", hls: closed, token: "alice", wantError: true, wantCode: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := url.Values{"src": {c.hls.base + "/hls/cam1/index.m3u8?token=" + c.token}}
			if c.preflight {
				q.Set("preflight", "1")
			}
			preflights := c.hls.preflights.Load()
			b.Navigate(t, page+"/player.html?"+q.Encode())
			var first, st crossOriginResult
			deadline := time.Now().Add(30 * time.Second)
			for {
				var raw string
				b.Eval(t, crossOriginState, &raw)
				if err := json.Unmarshal([]byte(raw), &st); err != nil {
					t.Fatal(err)
				}
				if st.State == "error" {
					break
				}
				if first.Time == 0 && st.Time > 0 {
					first = st
				}
				if first.Time > 0 && st.Time-first.Time >= 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("neither playing nor failed: %+v", st)
				}
				time.Sleep(100 * time.Millisecond)
			}
			switch {
			case !c.wantError && st.State == "error":
				t.Fatalf("the page could not play from %s: %+v", page, st)
			case !c.wantError && st.Audio != 1:
				t.Fatalf("playing %+v, want one audio track", st)
			case c.wantError && (st.State != "error" || st.Code != c.wantCode):
				t.Fatalf("page saw %+v, want a fatal error with status %d", st, c.wantCode)
			}
			if n := c.hls.preflights.Load() - preflights; c.preflight != (n > 0) {
				t.Fatalf("%d preflights, want them only with preflight=%v", n, c.preflight)
			}
			t.Logf("%+v", st)
			b.Navigate(t, "about:blank") // stop the player
		})
	}
}
