package rtsp

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
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
