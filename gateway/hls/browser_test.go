package hls

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const chromiumPath = "/usr/bin/chromium"

// playerPage plays the stream with hls.js and reports to /result what the
// browser saw: "playing <seconds played> <audio tracks>" once the video has
// advanced 2 s, or "error <details>".
const playerPage = `<!doctype html><html><body>
<video id="v" muted autoplay playsinline></video>
<script src="/hls.min.js"></script>
<script>
function report(s) { fetch('/result?r=' + encodeURIComponent(s)); }
if (!Hls.isSupported()) { report('error hls.js unsupported'); }
const v = document.getElementById('v');
const hls = new Hls({lowLatencyMode: true});
hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) report('error ' + d.type + ' ' + d.details); });
hls.loadSource('/hls/cam1/index.m3u8?token=alice');
hls.attachMedia(v);
v.play().catch(() => {});
let t0 = -1;
const iv = setInterval(() => {
  if (t0 < 0 && v.currentTime > 0) { t0 = v.currentTime; }
  if (t0 >= 0 && v.currentTime - t0 > 2) {
    clearInterval(iv);
    report('playing ' + (v.currentTime - t0).toFixed(1) + ' ' + hls.audioTracks.length);
  }
}, 100);
</script></body></html>`

// hlsJS is the hls.js build camgate ships for its share-link page
// (links/assets, from the hls.js npm package).
func hlsJS(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "links", "assets", "hls.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBrowserPlaysWithHLSJS plays the stream in headless Chromium with
// hls.js (LL-HLS mode), audio rendition included.
func TestBrowserPlaysWithHLSJS(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is required for the browser test: apt-get install -y chromium (or run scripts/test)", chromiumPath)
	}
	script := hlsJS(t)

	results := make(chan string, 4)
	h := newHarness(t, nil)
	page := fasthttp.RequestHandler(func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/player.html":
			ctx.SetContentType("text/html")
			ctx.SetBodyString(playerPage)
		case "/hls.min.js":
			ctx.SetContentType("application/javascript")
			ctx.SetBody(script)
		case "/result":
			select {
			case results <- string(ctx.QueryArgs().Peek("r")):
			default:
			}
		default:
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
	})
	h.page.Store(&page)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--no-first-run", "--user-data-dir="+t.TempDir(),
		"--autoplay-policy=no-user-gesture-required", h.base+"/player.html")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	select {
	case r := <-results:
		if !strings.HasPrefix(r, "playing ") {
			t.Fatalf("browser: %s", r)
		}
		if f := strings.Fields(r); len(f) != 3 || f[2] != "1" {
			t.Fatalf("browser saw %q, want one audio track", r)
		}
		t.Logf("hls.js: %s after %v", r, time.Since(start))
	case <-ctx.Done():
		t.Fatalf("no result from the browser; chromium said:\n%s", stderr.String())
	}
}
