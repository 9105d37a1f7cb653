package webrtc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/internal/browsertest"
	"github.com/camgate/camgate/internal/poll"
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
	h := newHarness(t)
	page := serveHTTP(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBodyString(whepPage)
	})
	b := browsertest.New(t)

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
			b.Navigate(t, url)
			var first pageState
			deadline := time.Now().Add(20 * time.Second)
			for {
				st := pageStateOf(t, b)
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
	b.Navigate(t, "about:blank")
	poll.Until(t, "sessions to end after the page was left", func() bool { return h.reg.Len() == 0 })
}

func pageStateOf(t *testing.T, b *browsertest.Session) pageState {
	t.Helper()
	var raw string
	b.Eval(t, pageStateScript, &raw)
	var st pageState
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("page state %q: %v", raw, err)
	}
	return st
}
