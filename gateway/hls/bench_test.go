package hls

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/sessiontest"
)

// benchSPS is a baseline-profile SPS (from gohlslib's tests).
var benchSPS = []byte{
	0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02,
	0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
	0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9,
	0x20,
}

// segmentFixture is a server with one prepared session on a muxer holding
// finished 64 KB segments (25 fps of 2560-byte keyframes, 1 s segments).
type segmentFixture struct {
	srv   *Server
	muxer *gohlslib.Muxer
	sid   string
	file  string // a segment's file name
	bytes []byte // that segment's content
}

func newSegmentFixture(b *testing.B) *segmentFixture {
	b.Helper()
	reg := &session.Registry{Recheck: func(*session.Session) session.Verdict { return session.Verdict{Allowed: true} }}
	if err := reg.Initialize(); err != nil {
		b.Fatal(err)
	}
	srv := &Server{Hub: &stream.Hub{}, Admitter: sessiontest.New(), Sessions: reg}
	if err := srv.Initialize(); err != nil {
		b.Fatal(err)
	}
	track := &gohlslib.Track{Codec: &codecs.H264{SPS: benchSPS, PPS: []byte{0x08}}, ClockRate: 90000}
	m := &gohlslib.Muxer{Tracks: []*gohlslib.Track{track}, Variant: gohlslib.MuxerVariantLowLatency, SegmentMinDuration: time.Second}
	if err := m.Start(); err != nil {
		b.Fatal(err)
	}
	idr := make([]byte, 2560)
	idr[0] = 0x65
	now := time.Now()
	for i := range 25 * 4 {
		if err := m.WriteH264(track, now, int64(i)*90000/25, [][]byte{benchSPS, {0x08}, idr}); err != nil {
			b.Fatal(err)
		}
	}
	cm := newCamMuxer(srv, "cam1", stream.VariantFull)
	cm.cur, cm.cancel, cm.refs = m, func() {}, 1
	srv.muxers["cam1\x00full"] = cm
	sid, _ := newSessionID()
	hs := &hlsSession{id: sid, regID: session.NewID(), camera: "cam1", mux: cm,
		ticket: session.Ticket{Subject: "alice", Camera: "cam1", Variant: stream.VariantFull}}
	hs.lastSeen.Store(time.Now().UnixNano())
	srv.sessions[sid] = hs
	b.Cleanup(func() { srv.Close(); m.Close() })

	f := &segmentFixture{srv: srv, muxer: m, sid: sid}
	rec := &recorder{header: http.Header{}}
	m.Handle(rec, &http.Request{URL: mustURL("video1_stream.m3u8")})
	for _, u := range uris(rec.body.String()) {
		if strings.Contains(u, "_seg") {
			f.file = u
		}
	}
	seg := &recorder{header: http.Header{}}
	m.Handle(seg, &http.Request{URL: mustURL(f.file)})
	f.bytes = seg.body.Bytes()
	if f.file == "" || len(f.bytes) < 64000 {
		b.Fatalf("fixture: segment %q of %d bytes", f.file, len(f.bytes))
	}
	return f
}

// run calls handler as fasthttp and the router would, once per iteration,
// for GET /hls/cam1/{file}?session=…: a fresh request, its path parsed.
func (f *segmentFixture) run(b *testing.B, handler fasthttp.RequestHandler) {
	var req fasthttp.Request
	req.SetRequestURI("/hls/cam1/" + f.file + "?session=" + f.sid)
	var ctx fasthttp.RequestCtx
	b.SetBytes(int64(len(f.bytes)))
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		req.CopyTo(&ctx.Request)
		ctx.Response.Reset()
		_ = ctx.Path() // routing
		handler(&ctx)
		if ctx.Response.StatusCode() != http.StatusOK || len(ctx.Response.Body()) != len(f.bytes) {
			b.Fatalf("%d, %d bytes", ctx.Response.StatusCode(), len(ctx.Response.Body()))
		}
	}
	reportRates(b, cpu0)
}

// BenchmarkSegment compares, for one 64 KB segment request: authorized
// (session lookup + Recheck, then the segment from the variant's file
// cache, as for every viewer after the first), authorized with a cache miss
// (through the adapter and gohlslib), our adapter and gohlslib alone,
// fasthttp's generic net/http adaptor instead of ours, and the same bytes
// served directly from memory.
func BenchmarkSegment(b *testing.B) {
	f := newSegmentFixture(b)
	b.Run("authorized", func(b *testing.B) {
		f.run(b, func(ctx *fasthttp.RequestCtx) { f.srv.Handle(ctx, "cam1", f.file) })
	})
	cm := f.srv.muxers["cam1\x00full"]
	b.Run("authorized-uncached", func(b *testing.B) {
		f.run(b, func(ctx *fasthttp.RequestCtx) {
			cm.files.mu.Lock()
			cm.files.owner = nil // every request a cache miss: through gohlslib
			cm.files.mu.Unlock()
			f.srv.Handle(ctx, "cam1", f.file)
		})
	})
	b.Run("unauthorized-adapter", func(b *testing.B) {
		f.run(b, func(ctx *fasthttp.RequestCtx) { serveDirect(ctx, f.muxer, f.file) })
	})
	adaptor := fasthttpadaptor.NewFastHTTPHandlerFunc(f.muxer.Handle)
	b.Run("unauthorized-fasthttpadaptor", func(b *testing.B) {
		f.run(b, adaptor)
	})
	b.Run("direct-bytes", func(b *testing.B) {
		f.run(b, func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("video/mp4")
			ctx.Response.Header.Set("Cache-Control", "private, max-age=3600")
			ctx.Response.SetBodyRaw(f.bytes)
		})
	})
}

// BenchmarkAuthorize is the per-request authorization alone.
func BenchmarkAuthorize(b *testing.B) {
	f := newSegmentFixture(b)
	id := []byte(f.sid)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.srv.authorize("cam1", id, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSegmentHTTP is the same comparison over loopback HTTP with a
// keep-alive fasthttp client: what a player sees, network stack included.
// On Linux it adds the segment sent with sendfile from a memfd
// (authorized-sendfile, see memfdSegment). cpu-ns/op is the whole
// process's, client included.
func BenchmarkSegmentHTTP(b *testing.B) {
	f := newSegmentFixture(b)
	handlers := []segmentHandler{
		{"authorized", func(ctx *fasthttp.RequestCtx) { f.srv.Handle(ctx, "cam1", f.file) }},
		{"direct-bytes", func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("video/mp4")
			ctx.Response.Header.Set("Cache-Control", "private, max-age=3600")
			ctx.Response.SetBodyRaw(f.bytes)
		}},
	}
	handlers = append(handlers, sendfileHandlers(b, f)...)
	for _, hc := range handlers {
		b.Run(hc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &fasthttp.Server{Handler: hc.h}
			go func() { _ = srv.Serve(ln) }()
			defer func() { _ = srv.Shutdown() }()
			client := &fasthttp.HostClient{Addr: ln.Addr().String()}
			url := "http://" + ln.Addr().String() + "/hls/cam1/" + f.file + "?session=" + f.sid
			var req fasthttp.Request
			var resp fasthttp.Response
			req.SetRequestURI(url)
			b.SetBytes(int64(len(f.bytes)))
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if err := client.Do(&req, &resp); err != nil || resp.StatusCode() != http.StatusOK {
					b.Fatalf("%v %d", err, resp.StatusCode())
				}
			}
			reportRates(b, cpu0)
		})
	}
}

// segmentHandler is one way of answering the segment request.
type segmentHandler struct {
	name string
	h    fasthttp.RequestHandler
}

// reportRates adds requests per second and process CPU per request.
func reportRates(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func mustURL(file string) *url.URL { return &url.URL{Path: file} }
