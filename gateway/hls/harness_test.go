package hls

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/sessiontest"
)

type harness struct {
	srv  *Server
	reg  *session.Registry
	adm  *sessiontest.Admitter
	hub  *stream.Hub
	base string // http://127.0.0.1:PORT
	http *fasthttp.Server
	// page, when set, serves everything outside /hls/ (the browser test's
	// player page, script and result reports).
	page atomic.Pointer[fasthttp.RequestHandler]
	// preflights counts the OPTIONS requests to /hls/.
	preflights atomic.Int32
}

// newHarness serves the HLS server on a real 127.0.0.1 port, fed by the
// builtin demo clip; configure may adjust the server before Initialize.
func newHarness(t *testing.T, configure func(*Server)) *harness {
	t.Helper()
	return newHarnessFrom(t, "builtin:demo", configure)
}

// newHarnessFrom is newHarness with every camera pulled from sourceURL.
func newHarnessFrom(t *testing.T, sourceURL string, configure func(*Server)) *harness {
	t.Helper()
	h := &harness{adm: sessiontest.New()}
	h.hub = &stream.Hub{Linger: time.Second, Sources: func(camera string) (source.Source, error) {
		return source.New(sourceURL, source.Options{})
	}}
	if err := h.hub.Initialize(); err != nil {
		t.Fatal(err)
	}
	h.reg = h.adm.Registry(t)
	h.srv = &Server{Hub: h.hub, Admitter: h.adm, Sessions: h.reg, BlockTimeout: 5 * time.Second}
	if configure != nil {
		configure(h.srv)
	}
	if err := h.srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.http = &fasthttp.Server{Handler: h.route}
	go func() { _ = h.http.Serve(ln) }()
	h.base = "http://" + ln.Addr().String()
	t.Cleanup(func() {
		_ = h.http.Shutdown()
		h.srv.Close()
		h.hub.Close()
	})
	return h
}

// route is what the integrator's router does for /hls/.
func (h *harness) route(ctx *fasthttp.RequestCtx) {
	rest, ok := strings.CutPrefix(string(ctx.Path()), "/hls/")
	if page := h.page.Load(); !ok && page != nil {
		(*page)(ctx)
		return
	}
	cam, file, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	if ctx.IsOptions() {
		h.preflights.Add(1)
	}
	h.srv.Handle(ctx, cam, file)
}
