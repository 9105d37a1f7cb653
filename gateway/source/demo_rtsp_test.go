package source

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/internal/mediatest"
)

// streamSink republishes what a source produces on the test upstream server,
// so that a real player can look at it.
type streamSink struct {
	up    *mediatest.Upstream
	desc  *description.Session    // set and read on the Run goroutine
	st    *gortsplib.ServerStream // likewise
	ready chan struct{}
}

func (s *streamSink) SetDescription(desc *description.Session) error {
	st, err := s.up.Serve(desc)
	if err != nil {
		return err
	}
	s.desc, s.st = desc, st
	close(s.ready)
	return nil
}

func (s *streamSink) WritePacketRTP(media int, pkt *rtp.Packet, ntp time.Time) {
	_ = s.st.WritePacketRTPWithNTP(s.desc.Medias[media], pkt, ntp)
}

// TestDemoIsPlayableByFFprobe checks the demo as a player sees it: served
// over RTSP, ffprobe finds 640x360 H264 and stereo Opus.
func TestDemoIsPlayableByFFprobe(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe is required: apt-get install -y ffmpeg (or run scripts/test)")
	}
	up := mediatest.StartUpstream(t)
	src, err := New(DemoURL, Options{Speed: 2})
	if err != nil {
		t.Fatal(err)
	}
	sink := &streamSink{up: up, ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	t.Cleanup(func() { cancel(); <-done })
	<-sink.ready

	probeCtx, probeCancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer probeCancel()
	out, err := exec.CommandContext(probeCtx, "ffprobe", "-v", "error", "-rtsp_transport", "tcp",
		"-show_entries", "stream=codec_name,width,height,channels,sample_rate", "-of", "json",
		up.URL()).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Streams []struct {
			CodecName  string `json:"codec_name"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
			Channels   int    `json:"channels"`
			SampleRate string `json:"sample_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatalf("ffprobe output %q: %v", out, err)
	}
	seen := map[string]bool{}
	for _, s := range probe.Streams {
		seen[s.CodecName] = true
		switch s.CodecName {
		case "h264":
			if s.Width != 640 || s.Height != 360 {
				t.Errorf("h264 is %dx%d, want 640x360", s.Width, s.Height)
			}
		case "opus":
			if s.Channels != 2 || s.SampleRate != "48000" {
				t.Errorf("opus has %d channels at %s Hz, want 2 at 48000", s.Channels, s.SampleRate)
			}
		}
	}
	if !seen["h264"] || !seen["opus"] {
		t.Fatalf("ffprobe saw %s, want h264 and opus", out)
	}
}
