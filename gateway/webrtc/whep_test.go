package webrtc

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/poll"
)

// h264Units reads video packets until it has seen n of them and returns
// the NAL unit types that started in them, checking every packet fits the
// WebRTC payload limit.
func h264Units(t *testing.T, tr *webrtc.TrackRemote, n int) map[byte]int {
	t.Helper()
	types := map[byte]int{}
	for i := 0; i < n; i++ {
		_ = tr.SetReadDeadline(time.Now().Add(5 * time.Second))
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			t.Fatalf("video packet %d: %v", i, err)
		}
		if len(pkt.Payload) > maxPayload || len(pkt.Payload) == 0 {
			t.Fatalf("video payload of %d bytes", len(pkt.Payload))
		}
		p := pkt.Payload
		switch typ := p[0] & 0x1f; typ {
		case 28:
			if p[1]&0x80 != 0 {
				types[p[1]&0x1f]++
			}
		case 24:
			for q := p[1:]; len(q) > 2; {
				size := int(q[0])<<8 | int(q[1])
				if size == 0 || size+2 > len(q) {
					t.Fatalf("bad STAP-A %x", p)
				}
				types[q[2]&0x1f]++
				q = q[2+size:]
			}
		default:
			types[typ]++
		}
	}
	return types
}

// mediaDirection returns the direction attribute of the answer's first
// section of kind.
func mediaDirection(t *testing.T, answer, kind string) string {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		t.Fatal(err)
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != kind {
			continue
		}
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendonly", "recvonly", "sendrecv", "inactive":
				return a.Key
			}
		}
	}
	return ""
}

func TestVideoForAllAudioOnlyWithSound(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		token, variant string
		audio          bool
	}{
		{"alice", stream.VariantFull, true},
		{"bob", stream.VariantVideo, false},
	}
	for _, c := range cases {
		t.Run(c.token, func(t *testing.T) {
			v := h.play(t, c.token)
			if !regexp.MustCompile(`^/whep/cam1/[A-Za-z0-9_-]{22}$`).MatchString(v.location) {
				t.Fatalf("Location %q", v.location)
			}
			var s session.Session
			for _, r := range h.reg.List() {
				if r.Subject == c.token {
					s = r
				}
			}
			if s.Protocol != session.ProtocolWebRTC || s.Variant != c.variant {
				t.Fatalf("session %+v", s)
			}
			if got := mediaDirection(t, v.answer, "audio"); (got == "sendonly") != c.audio {
				t.Fatalf("answer's audio direction is %q; audio wanted: %v", got, c.audio)
			}
			tr := v.nextTrack(t)
			var audio *webrtc.TrackRemote
			if tr.Kind() != webrtc.RTPCodecTypeVideo {
				audio, tr = tr, v.nextTrack(t) // audio came first
			}
			if mt := tr.Codec().MimeType; mt != webrtc.MimeTypeH264 {
				t.Fatalf("video codec %s", mt)
			}
			// 100 packets at 25 fps span more than a second: a keyframe
			// (with its SPS and PPS) arrives whatever the start point.
			units := h264Units(t, tr, 100)
			if units[5] == 0 || units[7] == 0 || units[8] == 0 {
				t.Fatalf("no IDR/SPS/PPS among NAL units %v", units)
			}
			if !c.audio {
				select {
				case tr := <-v.tracks:
					t.Fatalf("viewer without sound got a %s track", tr.Kind())
				default:
				}
				return
			}
			if audio == nil {
				audio = v.nextTrack(t)
			}
			if mt := audio.Codec().MimeType; mt != webrtc.MimeTypeOpus {
				t.Fatalf("audio codec %s", mt)
			}
			_ = audio.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := audio.ReadRTP(); err != nil {
				t.Fatalf("audio packet: %v", err)
			}
		})
	}
}

// TestViewersShareOneReader: viewers of a variant are fed by one stream
// reader per variant, whatever their number.
func TestViewersShareOneReader(t *testing.T) {
	h := newHarness(t)
	var vs []*viewer
	for _, tok := range []string{"alice", "carol", "bob"} {
		vs = append(vs, h.play(t, tok))
	}
	for _, v := range vs {
		if units := h264Units(t, v.nextTrack(t), 1); len(units) == 0 {
			t.Fatal("no video")
		}
	}
	stats := h.hub.Stats()
	if len(stats) != 1 || stats[0].Readers != 2 {
		t.Fatalf("hub stats %+v: want one camera with 2 readers (full and video variants)", stats)
	}
}

func TestRevokeClosesPeer(t *testing.T) {
	cases := []struct {
		name, token, variant string
	}{
		{"live revoked", "alice", ""},
		{"sound revoked", "alice", stream.VariantVideo},
		{"video viewer revoked", "bob", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			v := h.play(t, c.token)
			tr := v.nextTrack(t)
			_ = tr.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := tr.ReadRTP(); err != nil {
				t.Fatal(err)
			}
			h.adm.SetVariant(c.token, c.variant)
			if n := h.reg.Invalidate(session.Change{Subjects: []string{c.token}}); n != 1 {
				t.Fatalf("invalidate ended %d sessions, want 1", n)
			}
			v.waitEnded(t)
			if h.reg.Len() != 0 {
				t.Fatalf("registry has %d sessions", h.reg.Len())
			}
			// The track ends too: reads drain what was in flight, then fail.
			_ = tr.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "closed") {
						break
					}
					t.Fatalf("track read after revoke: %v", err)
				}
			}
		})
	}
}

// TestResourceURLIsNotTheSessionID: the registry's session id, which
// GET /api/v1/sessions shows, cannot end or trickle to a WHEP session; only
// the Location answered to its POST can.
func TestResourceURLIsNotTheSessionID(t *testing.T) {
	h := newHarness(t)
	v := h.play(t, "bob")
	v.nextTrack(t)
	list := h.reg.List()
	if len(list) != 1 {
		t.Fatalf("registry: %+v", list)
	}
	id := list[0].ID
	if strings.Contains(v.location, id) {
		t.Fatalf("Location %q carries the session id %q", v.location, id)
	}
	secret := strings.TrimPrefix(v.location, "/whep/cam1/")
	frag := "a=ice-ufrag:x\r\na=ice-pwd:y\r\n"
	cases := []struct{ name, method, path string }{
		{"DELETE by session id", "DELETE", "/whep/cam1/" + id},
		{"PATCH by session id", "PATCH", "/whep/cam1/" + id},
		{"DELETE on another camera", "DELETE", "/whep/cam2/" + secret},
		{"DELETE with a truncated secret", "DELETE", v.location[:len(v.location)-1]},
		{"DELETE with a changed secret", "DELETE", v.location[:len(v.location)-1] + map[bool]string{true: "B", false: "A"}[strings.HasSuffix(v.location, "A")]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if res := h.do(t, c.method, c.path, "", "application/trickle-ice-sdpfrag", frag); res.status != http.StatusNotFound {
				t.Fatalf("%s %s: %d %s, want 404", c.method, c.path, res.status, res.body)
			}
			if _, ok := h.reg.Get(id); !ok || v.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
				t.Fatalf("session ended (registered %v, connection %s)", ok, v.pc.ConnectionState())
			}
		})
	}
	if res := h.do(t, "DELETE", v.location, "", "", ""); res.status != http.StatusOK {
		t.Fatalf("DELETE Location: %d %s", res.status, res.body)
	}
	v.waitEnded(t)
	if _, ok := h.reg.Get(id); ok {
		t.Fatal("session still registered after DELETE of its Location")
	}
}

func TestDeleteEndsSession(t *testing.T) {
	h := newHarness(t)
	v := h.play(t, "bob")
	v.nextTrack(t)
	if res := h.do(t, "DELETE", v.location, "", "", ""); res.status != http.StatusOK {
		t.Fatalf("DELETE: %d %s", res.status, res.body)
	}
	v.waitEnded(t)
	if h.reg.Len() != 0 {
		t.Fatalf("registry has %d sessions", h.reg.Len())
	}
	if res := h.do(t, "DELETE", v.location, "", "", ""); res.status != http.StatusNotFound {
		t.Fatalf("second DELETE: %d", res.status)
	}
	poll.Until(t,

		"the variant's tracks to stop with its last viewer", func() bool {
			h.srv.mu.Lock()
			defer h.srv.mu.Unlock()
			return len(h.srv.tracks) == 0
		})

}

// TestTrickleICE sends the offer without candidates and trickles them.
func TestTrickleICE(t *testing.T) {
	h := newHarness(t)
	v := newViewerPC(t)
	var cands []string
	gathered := make(chan struct{})
	v.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			close(gathered)
			return
		}
		cands = append(cands, "a="+c.ToJSON().Candidate)
	})
	o, err := v.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	res := h.do(t, "POST", "/whep/cam1", "bob", "application/sdp", o.SDP)
	if res.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: res.body}); err != nil {
		t.Fatal(err)
	}
	<-gathered
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(o.SDP); err != nil {
		t.Fatal(err)
	}
	ufrag, _ := sd.MediaDescriptions[0].Attribute("ice-ufrag")
	mid, _ := sd.MediaDescriptions[0].Attribute("mid")
	frag := "a=ice-ufrag:" + ufrag + "\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:" + mid + "\r\n" + strings.Join(cands, "\r\n") + "\r\n"
	loc := res.header.Get("Location")
	cases := []struct {
		name, ctype, body string
		want              int
	}{
		{"wrong content type", "application/sdp", frag, http.StatusUnsupportedMediaType},
		{"ICE restart", "application/trickle-ice-sdpfrag", "a=ice-ufrag:other\r\n", http.StatusBadRequest},
		{"garbage candidate", "application/trickle-ice-sdpfrag", "a=candidate:garbage\r\n", http.StatusBadRequest},
		{"candidates", "application/trickle-ice-sdpfrag", frag, http.StatusNoContent},
	}
	for _, c := range cases {
		if got := h.do(t, "PATCH", loc, "", c.ctype, c.body); got.status != c.want {
			t.Fatalf("%s: PATCH %d %s, want %d", c.name, got.status, got.body, c.want)
		}
	}
	if units := h264Units(t, v.nextTrack(t), 1); len(units) == 0 {
		t.Fatal("no video")
	}
	// A PATCH re-checks access: a revoked viewer is closed by it.
	h.adm.SetVariant("bob", "")
	if got := h.do(t, "PATCH", loc, "", "application/trickle-ice-sdpfrag", frag); got.status != http.StatusForbidden {
		t.Fatalf("PATCH after revoke: %d %s", got.status, got.body)
	}
	v.waitEnded(t)
}

func TestRefusals(t *testing.T) {
	h := newHarness(t)
	offer := newViewerPC(t).offer(t)
	audioOnly := strings.Split(offer, "m=video")[0] // the audio section comes second
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"no token", "POST", "/whep/cam1", "", offer, 401},
		{"bad token", "POST", "/whep/cam1", "mallory", offer, 401},
		{"no live", "POST", "/whep/cam1", "eve", offer, 403},
		{"unknown camera", "POST", "/whep/nope", "alice", offer, 404},
		{"hidden path", "POST", "/whep/.cam1", "alice", offer, 404},
		{"garbage SDP", "POST", "/whep/cam1", "alice", "hello world", 400},
		{"empty body", "POST", "/whep/cam1", "alice", "", 400},
		{"no video section", "POST", "/whep/cam1", "alice", audioOnly, 400},
		{"video not receivable", "POST", "/whep/cam1", "alice", strings.ReplaceAll(offer, "a=recvonly", "a=sendonly"), 400},
		{"huge offer", "POST", "/whep/cam1", "alice", offer + strings.Repeat("a=x-pad:"+strings.Repeat("x", 100)+"\r\n", 700), 413},
		{"many sections", "POST", "/whep/cam1", "alice", offer + strings.Repeat("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", 40), 400},
		{"no fingerprint", "POST", "/whep/cam1", "alice", regexp.MustCompile(`a=fingerprint:.*\r\n`).ReplaceAllString(offer, ""), 400},
		{"no ICE credentials", "POST", "/whep/cam1", "alice", regexp.MustCompile(`a=ice-(ufrag|pwd):.*\r\n`).ReplaceAllString(offer, ""), 400},
		{"GET", "GET", "/whep/cam1", "alice", "", 405},
		{"PATCH unknown session", "PATCH", "/whep/cam1/0123", "", "", 404},
		{"DELETE unknown session", "DELETE", "/whep/cam1/0123", "", "", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := h.do(t, c.method, c.path, c.token, "application/sdp", c.body)
			if res.status != c.want {
				t.Fatalf("status %d %s, want %d", res.status, res.body, c.want)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(res.body), &e); err != nil || e.Error == "" {
				t.Fatalf("body %q is not a JSON error", res.body)
			}
			if res.header.Get("Access-Control-Allow-Origin") != "*" {
				t.Fatal("error without CORS header: the page could not read it")
			}
		})
	}
	if h.reg.Len() != 0 {
		t.Fatalf("refused requests left %d sessions", h.reg.Len())
	}
}

func TestCORSPreflight(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/whep/cam1", "/whep/cam1/abc"} {
		res := h.do(t, "OPTIONS", path, "", "", "")
		if res.status != http.StatusNoContent {
			t.Fatalf("%s: OPTIONS %d", path, res.status)
		}
		for k, want := range map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Headers": "Authorization",
			"Access-Control-Allow-Methods": map[bool]string{true: "POST", false: "DELETE"}[path == "/whep/cam1"],
		} {
			if got := res.header.Get(k); !strings.Contains(got, want) {
				t.Fatalf("%s: %s = %q, want it to contain %q", path, k, got, want)
			}
		}
	}
}

// TestServerCloseEndsViewers: closing the server closes every peer.
func TestServerCloseEndsViewers(t *testing.T) {
	h := newHarness(t)
	v := h.play(t, "alice")
	v.nextTrack(t)
	h.srv.Close()
	v.waitEnded(t)
	if h.reg.Len() != 0 {
		t.Fatalf("registry has %d sessions", h.reg.Len())
	}
}
