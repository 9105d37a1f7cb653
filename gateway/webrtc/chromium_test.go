package webrtc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	chromiumPath     = "/usr/bin/chromium"
	chromedriverPath = "/usr/bin/chromedriver"
)

// whepPage is a minimal WHEP player, as any web page would embed it. It is
// served from another origin than the WHEP endpoint, so the browser runs
// the CORS preflight for real.
const whepPage = `<!doctype html>
<html><body>
<video id="v" muted autoplay playsinline></video>
<script>
window.whep = {error: ""};
async function start() {
  const q = new URLSearchParams(location.search);
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addTransceiver("audio", {direction: "recvonly"});
  const ms = new MediaStream();
  const v = document.getElementById("v");
  pc.ontrack = (e) => { ms.addTrack(e.track); v.srcObject = ms; };
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(q.get("whep"), {
    method: "POST",
    headers: {"Authorization": "Bearer " + q.get("token"), "Content-Type": "application/sdp"},
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) { window.whep.error = res.status + " " + await res.text(); return; }
  const session = new URL(res.headers.get("Location"), q.get("whep")).href;
  window.whep.location = session;
  await pc.setRemoteDescription({type: "answer", sdp: await res.text()});
  // A WHEP player ends its session when the page goes away.
  addEventListener("pagehide", () => {
    pc.close();
    fetch(session, {method: "DELETE", keepalive: true});
  });
}
start().catch((e) => { window.whep.error = String(e); });
</script>
</body></html>`

// pageState is what the test reads from the page.
type pageState struct {
	Error       string  `json:"error"`
	Location    string  `json:"location"`
	CurrentTime float64 `json:"currentTime"`
	Width       int     `json:"width"`
	Frames      int     `json:"frames"`
	AudioTracks int     `json:"audioTracks"`
	VideoTracks int     `json:"videoTracks"`
}

const pageStateScript = `const v = document.getElementById("v");
const s = v.srcObject;
return JSON.stringify({
  error: window.whep.error, location: window.whep.location || "",
  currentTime: v.currentTime, width: v.videoWidth,
  frames: v.getVideoPlaybackQuality().totalVideoFrames,
  audioTracks: s ? s.getAudioTracks().length : 0,
  videoTracks: s ? s.getVideoTracks().length : 0,
});`

// TestChromiumPlaysWHEP plays the demo camera in headless Chromium through
// a WHEP page on another origin: the video element decodes frames and its
// currentTime advances; the audio track is there only with `sound`.
func TestChromiumPlaysWHEP(t *testing.T) {
	for _, p := range []string{chromiumPath, chromedriverPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is required for the browser test: install it with `apt-get install -y chromium chromium-driver` (%v)", p, err)
		}
	}
	h := newHarness(t)
	page := serveHTTP(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBodyString(whepPage)
	})
	wd := startChromedriver(t)
	sess := wd.newSession(t)

	cases := []struct {
		token  string
		audio  int
		window float64 // seconds of play to observe
	}{
		{"alice", 1, 2},
		{"bob", 0, 1},
	}
	for _, c := range cases {
		t.Run(c.token, func(t *testing.T) {
			url := page + "/?token=" + c.token + "&whep=" + h.base + "/whep/cam1"
			wd.call(t, "POST", "/session/"+sess+"/url", map[string]any{"url": url}, nil)
			var first pageState
			deadline := time.Now().Add(20 * time.Second)
			for {
				st := wd.pageState(t, sess)
				if st.Error != "" {
					t.Fatalf("page error: %s", st.Error)
				}
				if first.CurrentTime == 0 && st.CurrentTime > 0 {
					first = st
				}
				if first.CurrentTime > 0 && st.CurrentTime-first.CurrentTime >= c.window && st.Frames-first.Frames >= int(c.window*10) {
					if st.Width != 640 || st.VideoTracks != 1 || st.AudioTracks != c.audio {
						t.Fatalf("playing, but state %+v: want 640 px wide, 1 video track, %d audio", st, c.audio)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("video did not play: first %+v, now %+v", first, st)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	// Leaving the page ends the session (the peer connection goes away).
	wd.call(t, "POST", "/session/"+sess+"/url", map[string]any{"url": "about:blank"}, nil)
	waitFor(t, func() bool { return h.reg.Len() == 0 }, "sessions to end after the page was left")
}

// webdriver is a chromedriver speaking the W3C WebDriver HTTP protocol.
type webdriver struct{ base string }

func startChromedriver(t *testing.T) *webdriver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, chromedriverPath, "--port="+strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	wd := &webdriver{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	waitFor(t, func() bool {
		res, err := http.Get(wd.base + "/status")
		if err != nil {
			return false
		}
		_ = res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, "chromedriver to start")
	return wd
}

func (wd *webdriver) newSession(t *testing.T) string {
	t.Helper()
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromiumPath,
			"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection"},
		},
	}}}
	var res struct {
		SessionID string `json:"sessionId"`
	}
	wd.call(t, "POST", "/session", caps, &res)
	if res.SessionID == "" {
		t.Fatal("chromedriver returned no session")
	}
	t.Cleanup(func() { wd.call(t, "DELETE", "/session/"+res.SessionID, nil, nil) })
	return res.SessionID
}

func (wd *webdriver) pageState(t *testing.T, sess string) pageState {
	t.Helper()
	var raw string
	wd.call(t, "POST", "/session/"+sess+"/execute/sync", map[string]any{"script": pageStateScript, "args": []any{}}, &raw)
	var st pageState
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("page state %q: %v", raw, err)
	}
	return st
}

// call does one WebDriver command and decodes its "value" into out.
func (wd *webdriver) call(t *testing.T, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, wd.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &env); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("webdriver %s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(env.Value, out); err != nil {
			t.Fatalf("webdriver %s %s: value %s: %v", method, path, env.Value, err)
		}
	}
}
