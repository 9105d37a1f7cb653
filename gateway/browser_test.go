package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/browsertest"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
)

// playbackState is what the share page and its <video> say.
type playbackState struct {
	State       string  `json:"state"`
	Via         string  `json:"via"`
	CurrentTime float64 `json:"currentTime"`
	Width       int     `json:"width"`
	Status      string  `json:"status"`
}

const playbackScript = `const v = document.getElementById("video");
const pb = window.camgatePlayback || {};
return JSON.stringify({state: pb.state || "", via: pb.via || "", currentTime: v ? v.currentTime : 0,
  width: v ? v.videoWidth : 0, status: (document.getElementById("status") || {}).textContent || ""});`

// waitPlaying waits until the page plays and its video time advances by a
// second.
func waitPlaying(t *testing.T, b *browsertest.Session) playbackState {
	t.Helper()
	var first, st playbackState
	deadline := time.Now().Add(30 * time.Second)
	for {
		var raw string
		b.Eval(t, playbackScript, &raw)
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			t.Fatal(err)
		}
		if st.State == "error" {
			t.Fatalf("the page reports an error: %+v", st)
		}
		if first.CurrentTime == 0 && st.CurrentTime > 0 {
			first = st
		}
		if first.CurrentTime > 0 && st.CurrentTime-first.CurrentTime >= 1 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the video did not play: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestShareLinkPlaysInChromium opens a share link's URL in headless
// Chromium: the page plays the demo camera over WebRTC (WHEP); disabling the
// link ends the viewer's session.
func TestShareLinkPlaysInChromium(t *testing.T) {
	n := startNode(t, t.TempDir())
	out := mustCall(t, n, "POST", "/links", `{"device":"cam1","actions":["live","sound"],"not_after":"`+
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`, 201)
	url := strings.Replace(out["url"].(string), "http://localhost:8080", "http://"+n.g.HTTPAddr().String(), 1)
	b := browsertest.New(t)
	b.Navigate(t, url)
	st := waitPlaying(t, b)
	if st.Via != "whep" || st.Width != 640 {
		t.Fatalf("playing %+v, want the 640 px demo over WHEP", st)
	}
	if l := n.g.Sessions().List(); len(l) != 1 || l[0].Protocol != "webrtc" || l[0].Link != out["id"] {
		t.Fatalf("sessions %+v", l)
	}
	mustCall(t, n, "POST", "/links/"+out["id"].(string)+"/disable", "", 200)
	poll.Until(t, "the link's WebRTC session to end after the disable", func() bool { return n.g.Sessions().Len() == 0 })
}

// TestShareLinkSaysWhyACameraCannotPlay: a camera whose video neither
// WebRTC nor HLS can carry to a browser (MJPEG) ends the share page in an
// error that says so, with the gateway's reasons from both protocols, not
// a generic "stream has ended" (issue 19: the page falls back to HLS and
// shows a message if neither works).
func TestShareLinkSaysWhyACameraCannotPlay(t *testing.T) {
	n := startNode(t, t.TempDir())
	u := mediatest.StartUpstream(t)
	mediatest.Publish(t, u, mediatest.Clip{Name: "mjpeg", Video: []string{"-c:v", "mjpeg", "-huffman", "default", "-pix_fmt", "yuvj420p", "-q:v", "5"}, Ext: "mkv"})
	mustCall(t, n, "PUT", "/devices/mj", `{"site":"hq","kind":"camera","source":"`+u.URL()+`"}`, 200)
	out := mustCall(t, n, "POST", "/links", `{"device":"mj","actions":["live"],"not_after":"`+
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`, 201)
	url := strings.Replace(out["url"].(string), "http://localhost:8080", "http://"+n.g.HTTPAddr().String(), 1)
	b := browsertest.New(t)
	b.Navigate(t, url)
	var st playbackState
	poll.Until(t, "the share page to give up on the MJPEG camera", func() bool {
		var raw string
		b.Eval(t, playbackScript, &raw)
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			t.Fatal(err)
		}
		return st.State == "error"
	})
	for _, want := range []string{"cannot be played in this browser", "WebRTC: ", "M-JPEG", "HLS: "} {
		if !strings.Contains(st.Status, want) {
			t.Fatalf("the page says %q; want it to contain %q", st.Status, want)
		}
	}
	if n.g.Sessions().Len() != 0 {
		t.Fatalf("a refused playback left sessions: %+v", n.g.Sessions().List())
	}
}
