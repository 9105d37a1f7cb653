package rtsp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/sessiontest"
)

type harness struct {
	srv   *Server
	reg   *session.Registry
	adm   *sessiontest.Admitter
	hub   *stream.Hub
	url   string
	srcMu sync.Mutex
}

func newHarness(t *testing.T) *harness {
	return newHarnessWith(t, nil)
}

// newHarnessWith uses hub when given, else a hub playing the demo clip.
func newHarnessWith(t *testing.T, hub *stream.Hub) *harness {
	return newHarnessConfig(t, hub, nil)
}

// newHarnessConfig is newHarnessWith whose configure may adjust the server
// before Initialize.
func newHarnessConfig(t *testing.T, hub *stream.Hub, configure func(*Server)) *harness {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe is required (apt-get install ffmpeg)")
	}
	h := &harness{adm: sessiontest.New()}
	h.adm.Cameras = []string{"cam1"}
	h.hub = hub
	if h.hub == nil {
		h.hub = &stream.Hub{Sources: func(camera string) (source.Source, error) {
			return source.New("builtin:demo", source.Options{})
		}}
	}
	if err := h.hub.Initialize(); err != nil {
		t.Fatal(err)
	}
	h.reg = h.adm.Registry(t)
	h.srv = &Server{Address: "127.0.0.1:0", Hub: h.hub, Admitter: h.adm, Sessions: h.reg}
	if configure != nil {
		configure(h.srv)
	}
	if err := h.srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	h.url = "rtsp://" + h.srv.Addr().String()
	t.Cleanup(func() { h.srv.Close(); h.hub.Close() })
	return h
}

// probe reads url with ffprobe over TCP (see mediatest.Probe).
func probe(t *testing.T, url string, extra ...string) ([]string, string, error) {
	t.Helper()
	return mediatest.Probe(t, url, append([]string{"-rtsp_transport", "tcp"}, extra...)...)
}

func TestFFprobeSeesTracksBySound(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name, url, transport string
		want                 string
	}{
		{"query token with sound", h.url + "/cam1?token=alice", "tcp", "h264,opus"},
		{"basic password with sound", strings.Replace(h.url, "rtsp://", "rtsp://anyone:alice@", 1) + "/cam1", "tcp", "h264,opus"},
		{"without sound", h.url + "/cam1?token=bob", "tcp", "h264"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			codecs, stderr, err := probe(t, c.url)
			if err != nil {
				t.Fatalf("ffprobe: %v: %s", err, stderr)
			}
			if got := strings.Join(codecs, ","); got != c.want {
				t.Fatalf("tracks %q, want %q", got, c.want)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	h := newHarness(t)
	cases := []struct{ name, url, want string }{
		{"no token", h.url + "/cam1", "401"},
		{"bad token", h.url + "/cam1?token=mallory", "401"},
		{"bad basic password", strings.Replace(h.url, "rtsp://", "rtsp://x:mallory@", 1) + "/cam1", "401"},
		{"no live", h.url + "/cam1?token=eve", "403"},
		{"unknown camera", h.url + "/nope?token=alice", "404"},
		{"path trick", h.url + "/../cam1?token=alice", "404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := probe(t, c.url)
			if err == nil || !strings.Contains(stderr, c.want) {
				t.Fatalf("want %s, got err=%v stderr=%s", c.want, err, stderr)
			}
		})
	}
}

// TestRevokeEndsSession plays with ffmpeg and revokes: the session ends and
// ffmpeg stops receiving.
func TestRevokeEndsSession(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-timeout", "3000000",
		"-i", h.url+"/cam1?token=alice", "-f", "null", "-")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	poll.Until(t, "session registered", func() bool { return h.reg.Len() == 1 })
	s := h.reg.List()[0]
	if s.Subject != "alice" || s.Variant != stream.VariantFull || s.Protocol != session.ProtocolRTSP {
		t.Fatalf("session %+v", s)
	}
	h.adm.Revoke("alice")
	if n := h.reg.Invalidate(session.Change{Subjects: []string{"alice"}}); n != 1 {
		t.Fatalf("invalidate ended %d sessions, want 1", n)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("ffmpeg kept playing after the revoke")
	}
	if h.reg.Len() != 0 {
		t.Fatalf("registry still has %d sessions", h.reg.Len())
	}
}

// newUDPHarness is newHarnessWith whose server also serves RTP over UDP.
func newUDPHarness(t *testing.T, hub *stream.Hub, configure func(*Server)) *harness {
	t.Helper()
	h := newHarnessWith(t, hub)
	h.srv.Close()
	h.srv = &Server{Address: "127.0.0.1:0", Hub: h.hub, Admitter: h.adm, Sessions: h.reg}
	if configure != nil {
		configure(h.srv)
	}
	// gortsplib needs an even/odd UDP port pair; retry a few pairs.
	var err error
	for port := 38000; port < 38100; port += 2 {
		h.srv.UDPRTPAddress = fmt.Sprintf("127.0.0.1:%d", port)
		h.srv.UDPRTCPAddress = fmt.Sprintf("127.0.0.1:%d", port+1)
		if err = h.srv.Initialize(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	h.url = "rtsp://" + h.srv.Addr().String() // closed by newHarnessWith's cleanup
	return h
}

func TestUDPTransport(t *testing.T) {
	h := newUDPHarness(t, nil, nil)
	url := h.url + "/cam1?token=bob"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-rtsp_transport", "udp", "-i", url,
		"-frames:v", "10", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg over UDP: %v: %s", err, out)
	}
}

var _ = errors.New

// flakySource plays the demo for a while, then fails, like a camera that reboots.
type flakySource struct {
	inner source.Source
	for_  time.Duration
}

func (f flakySource) Run(ctx context.Context, sink source.Sink) error {
	ctx, cancel := context.WithTimeout(ctx, f.for_)
	defer cancel()
	_ = f.inner.Run(ctx, sink)
	return errors.New("camera rebooted")
}

// TestViewerSurvivesUpstreamRestart decodes 100 frames (4 s) over TCP while
// the upstream drops every second: the viewer keeps its session throughout.
func TestViewerSurvivesUpstreamRestart(t *testing.T) {
	var mu sync.Mutex
	starts := 0
	h := newHarnessWith(t, &stream.Hub{BackoffMin: 50 * time.Millisecond, Sources: func(string) (source.Source, error) {
		mu.Lock()
		starts++
		mu.Unlock()
		demo, err := source.New("builtin:demo", source.Options{})
		return flakySource{inner: demo, for_: time.Second}, err
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", h.url+"/cam1?token=alice",
		"-frames:v", "100", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if starts < 3 {
		t.Fatalf("upstream started %d times; the test needs restarts during playback", starts)
	}
}

// TestGarbageDoesNotDisturbViewers sends random bytes to the RTSP port while
// a viewer plays: the viewer keeps decoding.
func TestGarbageDoesNotDisturbViewers(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", h.url+"/cam1?token=bob",
		"-frames:v", "75", "-f", "null", "-")
	done := make(chan error, 1)
	var out bytes.Buffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*7 + i>>8)
	}
	for range 5 {
		c, err := net.Dial("tcp", h.srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(garbage)
		_, _ = c.Write([]byte("DESCRIBE rtsp://x/\x00\xff RTSP/1.0\r\nCSeq: x\r\n\r\n"))
		c.Close()
	}
	if err := <-done; err != nil {
		t.Fatalf("viewer disturbed by garbage on the port: %v: %s", err, out.String())
	}
}
