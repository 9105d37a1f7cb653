package archive

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// A real 1920x1080 baseline SPS/PPS: the init writer parses the SPS.
var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20}
	testPPS = []byte{0x08, 0x06, 0x07, 0x08}
)

// testAuth allows every token named in it; footage before notBefore is refused.
type testAuth struct {
	allow     map[string][]string // token → actions
	notBefore time.Time
}

func (a *testAuth) Authorize(_ context.Context, token, camera, action string, footage time.Time) (Viewer, error) {
	if camera == "unknown" {
		return Viewer{}, ErrUnknownCamera
	}
	actions, ok := a.allow[token]
	if !ok {
		return Viewer{}, ErrUnauthenticated
	}
	if footage.Before(a.notBefore) {
		return Viewer{}, ErrForbidden
	}
	for _, x := range actions {
		if x == action {
			return Viewer{Subject: token, Sound: true}, nil
		}
	}
	return Viewer{}, ErrForbidden
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func newTestStore(t testing.TB, dir string, clock *fakeClock) *Store {
	t.Helper()
	s := &Store{
		Dir:             dir,
		SegmentDuration: 2 * time.Second,
		PartDuration:    500 * time.Millisecond,
		Now:             clock.Now,
		PruneInterval:   time.Hour,
		Authorizer: &testAuth{allow: map[string][]string{
			"admin":  {ActionArchive, ActionDownload, ActionPhotoView, ActionAudioPlayback, ActionAudioDownload},
			"viewer": {ActionArchive, ActionPhotoView, ActionAudioPlayback},
		}},
	}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	<-s.indexed // every file compared with the index files, as a full scan would
	return s
}

// recordSynthetic writes d of 25 fps H264 (a keyframe a second, payloads of
// frameSize bytes) and 20 ms Opus frames, starting at wall time start.
func recordSynthetic(t testing.TB, s *Store, camera string, start time.Time, d time.Duration, frameSize int) {
	t.Helper()
	w, err := s.NewWriter(camera, []Track{
		{Codec: &codecs.H264{SPS: testSPS, PPS: testPPS}, ClockRate: 90000},
		{Codec: &codecs.Opus{ChannelCount: 2}, ClockRate: 48000},
	})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, frameSize)
	for i := range frame {
		frame[i] = byte(i)
	}
	audio := make([]byte, 120)
	vi, ai := 0, 0
	for {
		vt := time.Duration(vi) * 40 * time.Millisecond
		at := time.Duration(ai) * 20 * time.Millisecond
		if vt >= d && at >= d {
			break
		}
		var err error
		if vt <= at {
			key := vi%25 == 0
			frame[4] = 0x41
			if key {
				frame[4] = 0x65
			}
			n := len(frame) - 4
			frame[0], frame[1], frame[2], frame[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
			err = w.WriteSample(0, Sample{DTS: int64(vi) * 3600, Sync: key, Payload: frame, NTP: start.Add(vt)})
			vi++
		} else {
			err = w.WriteSample(1, Sample{DTS: int64(ai) * 960, Sync: true, Payload: audio, NTP: start.Add(at)})
			ai++
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// serve runs the store's handlers on an in-memory listener.
func serve(t testing.TB, s *Store) *fasthttp.Client {
	t.Helper()
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if !s.Handle(ctx) {
			ctx.Error("not found", fasthttp.StatusNotFound)
		}
	}, MaxRequestBodySize: 64 << 20}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
}

func do(t testing.TB, c *fasthttp.Client, method, uri, contentType string, body []byte) (int, []byte, *fasthttp.ResponseHeader) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://archive" + uri)
	req.Header.SetMethod(method)
	if contentType != "" {
		req.Header.SetContentType(contentType)
	}
	req.SetBody(body)
	if err := c.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	h := &fasthttp.ResponseHeader{}
	resp.Header.CopyTo(h)
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), h
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func mustLen[T any](t *testing.T, what string, s []T, n int) {
	t.Helper()
	if len(s) != n {
		t.Fatalf("%s: %d, want %d", what, len(s), n)
	}
}

var _ = fmt.Sprint
