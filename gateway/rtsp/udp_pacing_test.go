package rtsp

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/pion/rtp"
)

// TestUDPViewerJoiningLargeGOPLosesNothing: a camera of 9 Mbit/s whose
// cached GOP holds hundreds of packets (~0.5–1 MB); a viewer joins over UDP
// with the operating system's default receive buffer (208 KiB, 92
// datagrams). Sent in one burst, the GOP overflows that buffer; paced, the
// viewer (ffmpeg, which reports gaps in the sequence numbers) loses none.
func TestUDPViewerJoiningLargeGOPLosesNothing(t *testing.T) {
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, mediatest.NoisyClip())
	hub := &stream.Hub{Sources: func(string) (source.Source, error) {
		return source.New(up.URL(), source.Options{Transport: "tcp"})
	}}
	h := newUDPHarness(t, hub, func(s *Server) { s.QueueSize = 4096 })

	st, release, err := hub.Acquire(t.Context(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	const bigGOP = 400 // packets, ~560 KB: three times the viewer's buffer
	poll.Until(t, "a cached GOP of 400 packets", func() bool { return st.Video.GOPPackets() >= bigGOP })

	// ffmpeg as the player, reading 1.5 s over UDP (not decoding: in the
	// ffmpeg CLI, decoding stalls the one thread that also reads the
	// socket, which no player with a network thread does); -buffer_size
	// is what it asks of SO_RCVBUF, which Linux doubles: 212992, the
	// default.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "warning", "-rtsp_transport", "udp",
		"-buffer_size", "106496", "-i", h.url+"/cam1?token=bob", "-t", "1.5", "-c", "copy", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg over UDP: %v: %s", err, out)
	}
	// "RTP: missed 12 packets"
	if strings.Contains(string(out), "missed") {
		t.Fatalf("the viewer lost packets (gateway-side drops: %d):\n%s", st.Video.Dropped(), out)
	}
}

// TestUDPViewerStartsOnKeyframe: pacing holds nothing back at the start:
// the first packet a UDP viewer gets is the cached GOP's keyframe. (The
// pump starts after the PLAY response, when gortsplib sends to the
// session; starting it in OnPlay loses that keyframe only when the pump's
// goroutine runs before OnPlay returns, too rare a race to test here.)
func TestUDPViewerStartsOnKeyframe(t *testing.T) {
	h := newUDPHarness(t, nil, nil)
	st, release, err := h.hub.Acquire(t.Context(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	poll.Until(t, "a cached GOP", func() bool { return st.Video.GOPPackets() > 10 })

	first := make(chan []byte, 1)
	c, err := mediatest.Play(t, h.url+"/cam1?token=bob", gortsplib.ProtocolUDP, func(m *description.Media, pkt *rtp.Packet) {
		if m.Type == description.MediaTypeVideo {
			select {
			case first <- slices.Clone(pkt.Payload):
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case p := <-first:
		if !h264Starts(p) {
			t.Fatalf("the first video packet (NAL type %d) does not start a keyframe", p[0]&0x1f)
		}
	case <-time.After(poll.Timeout):
		t.Fatal("no video packet")
	}
}

// h264Starts reports whether an H264 RTP payload starts a point a decoder
// can start at: SPS or IDR, alone, first in a STAP-A or the start of a
// fragment.
func h264Starts(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	key := func(t byte) bool { return t == 5 || t == 7 }
	switch t := p[0] & 0x1f; t {
	case 24: // STAP-A: 16-bit size, NALU, ...
		return len(p) > 3 && key(p[3]&0x1f)
	case 28: // FU-A
		return p[1]&0x80 != 0 && key(p[1]&0x1f)
	default:
		return key(t)
	}
}
