package source

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/camgate/camgate/internal/mediatest"
)

// h264Opus is the camera the pull tests use: H264 and Opus, published by
// ffmpeg into a mediatest.Upstream.
var h264Opus = mediatest.Clip{Name: "h264-opus", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0"}, Ext: "mkv", AudioCodec: "libopus"}

func TestRTSPPullsUntilUpstreamStops(t *testing.T) {
	for _, transport := range []string{"tcp", ""} {
		t.Run("transport="+transport, func(t *testing.T) {
			up := mediatest.StartUpstream(t)
			kill := mediatest.Publish(t, up, h264Opus)
			up.RequireCredentials("cam", "s3cr3t-pw") // packets flow only if the URL's are used

			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			src, err := New(up.URLWith("cam:s3cr3t-pw@"), Options{Logger: logger, Transport: transport, ReadTimeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			sink := newRecordingSink()
			done := make(chan error, 1)
			go func() { done <- src.Run(t.Context(), sink) }()

			sink.waitFor(t, 10*time.Second, "H264 and Opus packets", func(d []*description.Session, p []recordedPacket) bool {
				n := countMedia(p)
				return len(d) > 0 && n[0] >= 10 && n[1] >= 10
			})
			descs, pkts := sink.snapshot()
			if len(descs) != 1 {
				t.Fatalf("SetDescription called %d times, want 1", len(descs))
			}
			forms := mediaFormats(descs[0])
			if len(forms) != 2 {
				t.Fatalf("%d medias, want 2 (H264, Opus)", len(forms))
			}
			h, ok := forms[0].(*format.H264)
			if !ok {
				t.Fatalf("media 0 is %T, want H264", forms[0])
			}
			if _, ok := forms[1].(*format.Opus); !ok {
				t.Fatalf("media 1 is %T, want Opus", forms[1])
			}
			for _, p := range pkts {
				if p.ntp.IsZero() {
					t.Fatal("packet without NTP time")
				}
			}
			if aus := decodeH264(t, h, pkts, 0); len(aus) == 0 {
				t.Error("no decodable H264 access unit")
			}

			kill()
			var runErr error
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after the upstream stopped")
			}
			if runErr == nil {
				t.Fatal("Run returned nil after the upstream stopped, want an error")
			}
			for _, text := range []string{logs.String(), runErr.Error()} {
				if strings.Contains(text, "s3cr3t-pw") || strings.Contains(text, "cam:") {
					t.Errorf("credentials leaked: %s", text)
				}
			}
			if !strings.Contains(logs.String(), "upstream playing") {
				t.Errorf("logs lack the connection event: %s", logs.String())
			}
		})
	}
}

// TestRTSPPullAnswersBasicAndDigest: a camera that challenges with Basic
// only, or Digest only, is pulled with the URL's credentials, and refuses a
// wrong password either way.
func TestRTSPPullAnswersBasicAndDigest(t *testing.T) {
	for name, m := range map[string]auth.VerifyMethod{"basic": auth.VerifyMethodBasic, "digest": auth.VerifyMethodDigestMD5} {
		t.Run(name, func(t *testing.T) {
			up := mediatest.StartUpstream(t, m)
			mediatest.Publish(t, up, h264Opus)
			up.RequireCredentials("cam", "pw-"+name)
			for _, tc := range []struct {
				userinfo string
				ok       bool
			}{{"cam:wrong@", false}, {"cam:pw-" + name + "@", true}} {
				src, err := New(up.URLWith(tc.userinfo), Options{Transport: "tcp", ReadTimeout: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				sink := newRecordingSink()
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- src.Run(ctx, sink) }()
				if tc.ok {
					sink.waitFor(t, 10*time.Second, "packets", func(_ []*description.Session, p []recordedPacket) bool { return len(p) > 0 })
					cancel()
					if err := <-done; err != nil {
						t.Fatalf("right password: %v", err)
					}
					continue
				}
				err = <-done
				cancel()
				if err == nil {
					t.Fatal("wrong password: Run = nil")
				}
				if descs, _ := sink.snapshot(); len(descs) != 0 {
					t.Fatal("wrong password got a description")
				}
			}
		})
	}
}

func TestRTSPRunReturnsNilOnCancel(t *testing.T) {
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, h264Opus)
	src, err := New(up.URL(), Options{Transport: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecordingSink()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	sink.waitFor(t, 10*time.Second, "packets", func(_ []*description.Session, p []recordedPacket) bool {
		return len(p) > 0
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRTSPRunFailsWithoutStream(t *testing.T) {
	up := mediatest.StartUpstream(t) // nobody publishes: DESCRIBE answers 404
	dead := mediatest.StartUpstream(t)
	deadURL := dead.URL()
	dead.Close() // nothing listens there any more

	locked := mediatest.StartUpstream(t)
	mediatest.Publish(t, locked, h264Opus)
	locked.RequireCredentials("cam", "right-pw")

	tests := []struct{ name, url string }{
		{"not found", up.URL()},
		{"connection refused", deadURL},
		{"wrong password", locked.URLWith("cam:wrong-pw@")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(tt.url, Options{Transport: "tcp", ReadTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			sink := newRecordingSink()
			err = src.Run(t.Context(), sink)
			if err == nil {
				t.Fatal("Run = nil, want an error")
			}
			if strings.Contains(err.Error(), "wrong-pw") {
				t.Errorf("error leaks the password: %v", err)
			}
			if descs, _ := sink.snapshot(); len(descs) != 0 {
				t.Errorf("SetDescription called %d times before failure, want 0", len(descs))
			}
		})
	}
}

func TestNewRejectsUnsupportedURLs(t *testing.T) {
	tests := []struct {
		url     string
		opts    Options
		wantErr error
	}{
		{"file:///tmp/clip.mp4", Options{}, ErrUnsupportedScheme},
		{"http://cam.local/stream", Options{}, ErrUnsupportedScheme},
		{"rtmp://cam.local/live", Options{}, ErrUnsupportedScheme},
		{"builtin:other", Options{}, ErrUnsupportedScheme},
		{"garbage", Options{}, ErrUnsupportedScheme},
		{"", Options{}, ErrUnsupportedScheme},
		{"rtsp://", Options{}, ErrUnsupportedScheme},
		{"rtsp://u:p@[::1/x", Options{}, ErrUnsupportedScheme},
		{"rtsp://cam.local/s", Options{Transport: "quic"}, ErrBadOption},
		{"rtsp://cam.local/s", Options{UDPReadBuffer: -1}, ErrBadOption},
		{"rtsp://cam.local/s", Options{ReadTimeout: -time.Second}, ErrBadOption},
		{DemoURL, Options{Speed: -1}, ErrBadOption},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := New(tt.url, tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New(%q) = %v, want %v", tt.url, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), ":p@") {
				t.Errorf("error leaks the password: %v", err)
			}
			if tt.wantErr == ErrUnsupportedScheme && !strings.Contains(err.Error(), "rtsp://, rtsps:// and builtin:demo") {
				t.Errorf("error %q does not name the accepted schemes", err)
			}
		})
	}

	for _, ok := range []string{"rtsp://cam.local:554/s", "RTSPS://u:p@cam.local/s?x=1", DemoURL} {
		if _, err := New(ok, Options{}); err != nil {
			t.Errorf("New(%q) = %v, want a source", ok, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	src, err := New("rtsp://admin:hunter2@cam.local:554/live?token=abc&ch=1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := src.(*RTSP).logURL
	for _, secret := range []string{"admin", "hunter2", "abc"} {
		if strings.Contains(got, secret) {
			t.Errorf("log URL %q contains %q", got, secret)
		}
	}
	if !strings.Contains(got, "cam.local:554/live") || !strings.Contains(got, "ch=1") {
		t.Errorf("log URL %q lost the host, path or harmless query", got)
	}
}

func TestThrottledLogReportsOncePerPeriod(t *testing.T) {
	var logs bytes.Buffer
	tl := &throttledLog{log: slog.New(slog.NewTextHandler(&logs, nil)), msg: "lost", period: time.Hour}
	for range 5 {
		tl.add(3, nil)
	}
	if n := strings.Count(logs.String(), "msg=lost"); n != 1 {
		t.Fatalf("%d log lines for 5 losses within a period, want 1:\n%s", n, logs.String())
	}
	tl.mu.Lock()
	pending := tl.count
	tl.mu.Unlock()
	if pending != 12 {
		t.Errorf("%d losses pending for the next line, want 12", pending)
	}
}

// TestRTSPDialsFromLocalIP: with LocalIP the connection to the upstream
// leaves from that address (a cluster node pulls from its advertised
// one); a LocalIP that is no IP is refused up front.
func TestRTSPDialsFromLocalIP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	src, err := New("rtsp://"+ln.Addr().String()+"/cam1", Options{LocalIP: "127.0.0.6", Transport: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, newRecordingSink()) }()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	c.Close()
	cancel()
	<-done
	if host != "127.0.0.6" {
		t.Fatalf("the source dialled from %s, want 127.0.0.6", host)
	}
	if _, err := New("rtsp://127.0.0.1:1/cam1", Options{LocalIP: "node-b"}); !errors.Is(err, ErrBadOption) {
		t.Fatalf("LocalIP %q: %v, want ErrBadOption", "node-b", err)
	}
}
