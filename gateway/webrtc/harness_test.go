package webrtc

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/sessiontest"
	"github.com/camgate/camgate/internal/whepclient"
)

type harness struct {
	gone atomic.Bool // the camera was deleted: its source is unknown
	srv  *Server
	reg  *session.Registry
	adm  *sessiontest.Admitter
	hub  *stream.Hub
	base string // http://127.0.0.1:port
}

// newHarness serves the demo camera over WHEP with the ICE mux on loopback;
// opts adjust the server before it starts.
func newHarness(t testing.TB, opts ...func(*Server)) *harness {
	t.Helper()
	return newHarnessFrom(t, "builtin:demo", opts...)
}

// newHarnessFrom is newHarness with the camera pulled from sourceURL.
func newHarnessFrom(t testing.TB, sourceURL string, opts ...func(*Server)) *harness {
	t.Helper()
	h := &harness{adm: sessiontest.New()}
	h.adm.Cameras = []string{"cam1"}
	h.adm.SetVariant("carol", stream.VariantFull)
	h.hub = &stream.Hub{Sources: func(camera string) (source.Source, error) {
		if h.gone.Load() {
			return nil, fmt.Errorf("%w: %s", stream.ErrUnknownCamera, camera)
		}
		return source.New(sourceURL, source.Options{})
	}}
	if err := h.hub.Initialize(); err != nil {
		t.Fatal(err)
	}
	h.reg = h.adm.Registry(t)
	h.srv = &Server{Hub: h.hub, Admitter: h.adm, Sessions: h.reg, UDPMuxAddress: "127.0.0.1:0", IncludeLoopback: true}
	for _, o := range opts {
		o(h.srv)
	}
	if err := h.srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	h.base = serveHTTP(t, h.route)
	t.Cleanup(func() { h.srv.Close(); h.hub.Close() })
	return h
}

// route is what the integrator's router does for /whep.
func (h *harness) route(ctx *fasthttp.RequestCtx) {
	rest, ok := strings.CutPrefix(string(ctx.Path()), "/whep/")
	if !ok {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	camera, id, _ := strings.Cut(rest, "/")
	h.srv.Handle(ctx, camera, id)
}

// serveHTTP serves handler on a loopback port until the test ends.
func serveHTTP(t testing.TB, handler fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fasthttp.Server{Handler: handler}
	done := make(chan struct{})
	go func() { defer close(done); _ = fs.Serve(ln) }()
	// Closing the listener too: a Shutdown that comes before Serve has
	// registered it would otherwise leave Serve running.
	t.Cleanup(func() { _ = fs.Shutdown(); _ = ln.Close(); <-done })
	return "http://" + ln.Addr().String()
}

type httpResult struct {
	status int
	header http.Header
	body   string
}

func (h *harness) do(t testing.TB, method, path, token, contentType, body string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpResult{status: res.StatusCode, header: res.Header, body: string(b)}
}

// viewer is a pion WHEP client, set up like a browser: recvonly video and
// audio, default codecs.
type viewer struct {
	pc       *webrtc.PeerConnection
	tracks   chan *webrtc.TrackRemote
	states   chan webrtc.PeerConnectionState
	location string
	answer   string
}

// newViewerPC is a pion viewer offering only videoMimes (none: pion's
// defaults, H264 and H265 among them).
func newViewerPC(t testing.TB, videoMimes ...string) *viewer {
	t.Helper()
	api, err := whepclient.APIVideo(pionLoggers{slog.New(slog.DiscardHandler)}, videoMimes...)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := whepclient.RecvOnly(api)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	v := &viewer{pc: pc, tracks: make(chan *webrtc.TrackRemote, 4), states: make(chan webrtc.PeerConnectionState, 16)}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { v.tracks <- tr })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		select {
		case v.states <- s:
		default:
		}
	})
	return v
}

// offer returns the viewer's offer with all its candidates.
func (v *viewer) offer(t testing.TB) string {
	t.Helper()
	o, err := v.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(v.pc)
	if err := v.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return v.pc.LocalDescription().SDP
}

// play posts the offer with token and applies the answer.
func (h *harness) play(t testing.TB, token string) *viewer {
	t.Helper()
	v := newViewerPC(t)
	res := h.do(t, "POST", "/whep/cam1", token, "application/sdp", v.offer(t))
	if res.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	v.location, v.answer = res.header.Get("Location"), res.body
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: res.body}); err != nil {
		t.Fatal(err)
	}
	return v
}

// nextTrack waits for the next remote track.
func (v *viewer) nextTrack(t testing.TB) *webrtc.TrackRemote {
	t.Helper()
	select {
	case tr := <-v.tracks:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatal("no track arrived")
		return nil
	}
}

// waitEnded waits until the viewer's connection is closed or failed.
func (v *viewer) waitEnded(t testing.TB) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-v.states:
			if s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed {
				return
			}
		case <-deadline:
			t.Fatalf("connection still %s", v.pc.ConnectionState())
		}
	}
}
