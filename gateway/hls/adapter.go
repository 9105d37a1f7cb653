package hls

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/internal/httpjson"
)

// This file is the one place where fasthttp meets net/http: gohlslib's
// Muxer.Handle speaks net/http only. It serves playlists, and each media file
// once per camera variant: after that, viewers get the file from the
// variant's fileCache (file_cache.go).
//
// Two paths:
//   - init files and segments never block inside gohlslib (the handler it
//     registers copies finished bytes), so they run synchronously and write
//     straight into the fasthttp response body, with pooled request/writer
//     objects (ctxWriter implements io.ReaderFrom).
//   - playlists and parts may block: gohlslib waits on a sync.Cond until the
//     muxer has the asked-for content (LL-HLS _HLS_msn/_HLS_part, the preload
//     hint part, the first segment). It has no timeout of its own and ignores
//     the request context; the wait ends only when the muxer advances or is
//     closed. So the call runs on its own goroutine writing into a recorder,
//     and the fasthttp handler waits at most BlockTimeout; then it answers 503
//     and leaves the goroutine to finish (or be released by Muxer.Close) on
//     its own. MaxBlocking bounds how many such goroutines one muxer may have,
//     so a stalled camera cannot accumulate them without limit, and
//     MaxBlockingPerSession how many of them one viewer may hold, so one
//     viewer cannot take them all (see Server.serve).

// mediaCacheControl is what media files are served with: gohlslib's max-age,
// but private (see copyHeaders).
const mediaCacheControl = "private, max-age=3600"

// muxerHandler is what the adapter needs of a gohlslib Muxer.
type muxerHandler interface {
	Handle(w http.ResponseWriter, r *http.Request)
}

// errBlockTimeout: the muxer did not have the content within BlockTimeout.
var errBlockTimeout = fmt.Errorf("timed out waiting for the stream: %w", httpjson.ErrUnavailable)

// muxerResult is the outcome of a muxer call when it did not answer 200:
// the status gohlslib chose (0: it did not know the file).
type muxerResult struct{ status int }

// ctxWriter is an http.ResponseWriter writing into a fasthttp response.
type ctxWriter struct {
	ctx    *fasthttp.RequestCtx
	header http.Header
	status int
	req    http.Request
	url    url.URL
}

var ctxWriterPool = sync.Pool{New: func() any {
	w := &ctxWriter{header: make(http.Header, 2)}
	w.req = http.Request{Method: http.MethodGet, URL: &w.url, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	return w
}}

func (w *ctxWriter) Header() http.Header { return w.header }

func (w *ctxWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *ctxWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.status != http.StatusOK {
		return len(p), nil
	}
	return w.ctx.Write(p)
}

// ReadFrom reads a segment straight into fasthttp's pooled body buffer
// (borrowed with SwapBody and handed back): one copy, as when serving bytes
// from memory, and no 32 KB io.Copy buffer per request.
func (w *ctxWriter) ReadFrom(r io.Reader) (int64, error) {
	w.WriteHeader(http.StatusOK)
	if w.status != http.StatusOK {
		return io.Copy(io.Discard, r)
	}
	buf := w.ctx.Response.SwapBody(nil)
	start := len(buf)
	var err error
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		var k int
		k, err = r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			break
		}
	}
	w.ctx.Response.SwapBody(buf)
	if err == io.EOF {
		err = nil
	}
	return int64(len(buf) - start), err
}

// serveDirect runs a non-blocking muxer request in the handler.
func serveDirect(ctx *fasthttp.RequestCtx, m muxerHandler, file string) muxerResult {
	w := ctxWriterPool.Get().(*ctxWriter)
	w.ctx, w.status = ctx, 0
	clear(w.header)
	w.url = url.URL{Path: file}
	w.req.URL = &w.url
	w.req.RequestURI = file
	// gohlslib reads only the URL; a request context would cost an allocation.
	m.Handle(w, &w.req)
	res := muxerResult{status: w.status}
	if res.status == http.StatusOK {
		copyHeaders(ctx, w.header, false)
	}
	w.ctx = nil
	ctxWriterPool.Put(w)
	return res
}

// recorder is an http.ResponseWriter owned by a blocking muxer call; the
// handler copies it out only if the call finished in time.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}

// serveBlocking runs a muxer request that may block, for at most timeout.
// pending counts the camera variant's calls still running (including
// abandoned ones); sessionPending is the session's count, already taken by
// the caller for this call, and given back when the call ends.
func serveBlocking(ctx *fasthttp.RequestCtx, m muxerHandler, file, rawQuery string, kind fileKind,
	timeout time.Duration, pending *atomic.Int32, maxPending int32, sessionPending *atomic.Int32) (muxerResult, error) {
	if pending.Add(1) > maxPending {
		pending.Add(-1)
		sessionPending.Add(-1)
		return muxerResult{}, errBlockTimeout
	}
	rec := &recorder{header: make(http.Header, 2)}
	req := &http.Request{
		Method: http.MethodGet, URL: &url.URL{Path: file, RawQuery: rawQuery}, RequestURI: file,
		Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	done := make(chan struct{})
	go func() {
		defer pending.Add(-1)
		defer sessionPending.Add(-1)
		defer close(done)
		m.Handle(rec, req)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		return muxerResult{}, errBlockTimeout
	}
	if rec.status != http.StatusOK {
		return muxerResult{status: rec.status}, nil
	}
	copyHeaders(ctx, rec.header, kind == kindIndex)
	ctx.SetBody(rec.body.Bytes())
	return muxerResult{status: http.StatusOK}, nil
}

// copyHeaders copies what gohlslib sets. Its Cache-Control says "public";
// these responses are per session, so shared caches must not keep them, and
// the multivariant playlist (which may carry Set-Cookie) is not cached at all.
func copyHeaders(ctx *fasthttp.RequestCtx, h http.Header, noStore bool) {
	if ct := h.Get("Content-Type"); ct != "" {
		ctx.Response.Header.SetContentType(ct)
	}
	cc := h.Get("Cache-Control")
	switch {
	case noStore:
		cc = "no-store"
	case cc == "public, max-age=3600": // segments, parts, init files: no allocation
		cc = mediaCacheControl
	case strings.HasPrefix(cc, "public"):
		cc = "private" + cc[len("public"):]
	}
	if cc != "" {
		ctx.Response.Header.Set("Cache-Control", cc)
	}
	ctx.SetStatusCode(http.StatusOK)
}
