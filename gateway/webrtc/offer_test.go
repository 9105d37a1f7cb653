package webrtc

import (
	"errors"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// chromeOffer is the shape of a browser's WHEP offer (trimmed).
const chromeOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=setup:actpass\r\na=rtcp-mux\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=setup:actpass\r\na=rtcp-mux\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n"

func TestCheckOffer(t *testing.T) {
	cases := []struct {
		name, offer string
		audio       bool
		err         bool
	}{
		{"browser offer", chromeOffer, true, false},
		{"no audio section", strings.Split(chromeOffer, "m=audio")[0], false, false},
		{"audio it would send", strings.Replace(chromeOffer, "a=recvonly\r\na=rtpmap:111", "a=sendonly\r\na=rtpmap:111", 1), false, false},
		{"VP8 only", strings.Replace(chromeOffer, "a=rtpmap:102 H264/90000", "a=rtpmap:102 VP9/90000", 1), false, true},
		{"video disabled", strings.Replace(chromeOffer, "m=video 9", "m=video 0", 1), false, true},
		{"not SDP", "GET / HTTP/1.1\r\n", false, true},
		{"binary", "\x00\xff\xfe", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := checkOffer(c.offer)
			if (err != nil) != c.err || (err != nil && !errors.Is(err, ErrBadOffer)) {
				t.Fatalf("err %v, want error: %v", err, c.err)
			}
			if err == nil && (info.audio != c.audio || info.ufrag != "abcd") {
				t.Fatalf("info %+v", info)
			}
		})
	}
}

func TestParseTrickle(t *testing.T) {
	frag := "a=ice-ufrag:abcd\r\na=ice-pwd:xyz\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:1\r\n" +
		"a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\na=end-of-candidates\r\n"
	tr, err := parseTrickle(frag)
	if err != nil || tr.ufrag != "abcd" || len(tr.candidates) != 1 {
		t.Fatalf("%+v %v", tr, err)
	}
	if c := tr.candidates[0]; *c.SDPMid != "1" || !strings.HasPrefix(c.Candidate, "candidate:1 1 udp") {
		t.Fatalf("candidate %+v", c)
	}
	if _, err := parseTrickle(strings.Repeat("a=candidate:x\n", maxCandidates+1)); !errors.Is(err, ErrBadCandidate) {
		t.Fatalf("too many candidates: %v", err)
	}
}

// FuzzOffer feeds hostile offers through the same steps as a POST: the
// check, then pion's parsing of what passes it. Nothing may panic.
func FuzzOffer(f *testing.F) {
	f.Add(chromeOffer)
	f.Add(strings.Replace(chromeOffer, "a=fingerprint:sha-256", "a=fingerprint:md5", 1))
	f.Add(strings.Replace(chromeOffer, "a=mid:0", "a=mid:"+strings.Repeat("0", 300), 1))
	f.Add("v=0\r\nm=video 9 RTP 102\r\na=rtpmap:102 H264/90000\r\n")
	api := webrtc.NewAPI()
	f.Fuzz(func(t *testing.T, offer string) {
		if _, err := checkOffer(offer); err != nil {
			return
		}
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		_ = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer})
	})
}

func FuzzTrickle(f *testing.F) {
	f.Add("a=ice-ufrag:abcd\r\nm=audio 9 X 0\r\na=mid:1\r\na=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\n")
	f.Fuzz(func(t *testing.T, frag string) {
		tr, err := parseTrickle(frag)
		if err == nil && len(tr.candidates) > maxCandidates {
			t.Fatalf("%d candidates", len(tr.candidates))
		}
	})
}
