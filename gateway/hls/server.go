// Package hls serves live cameras over HLS and Low-Latency HLS at
// /hls/{camera}/index.m3u8?token=…. The first request exchanges the token for
// an HLS session (a 128-bit random id carried in every playlist URL and in an
// HttpOnly cookie); every later playlist, init, segment and part request is
// authorized again against that session's cached decision, so a revoke turns
// the next request into a 403. Muxing is gohlslib's (fMP4, LL-HLS), one muxer
// per camera variant shared by all its viewers: a viewer without `sound` is
// served the video-only variant, with no audio rendition. Sessions are in the
// session registry like RTSP ones and expire when idle.
//
// Codecs: H264 or H265 video, AAC or Opus audio; G.711 becomes AAC with
// TranscodeAudio (gateway/transcode, one ffmpeg per camera muxer). Audio
// players cannot decode and that is not transcoded is left out, with one
// WARN per camera muxer and the AudioDroppedHeader on playlists; a camera
// without H264/H265 video (MJPEG)
// is a 415 naming its codec, warned once and not restarted in a busy loop.
package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/httpjson"
)

// Hub is what the server needs from the stream hub.
type Hub interface {
	Acquire(ctx context.Context, camera string) (*stream.Stream, func(), error)
}

// Sessions is what the server needs from the session registry.
type Sessions interface {
	Add(s *session.Session)
	Remove(id, reason string)
}

// errMethod: only GET and HEAD are served (and OPTIONS, the CORS preflight).
var errMethod = fmt.Errorf("hls: %w", httpjson.ErrMethodNotAllowed)

// errStreamUnavailable stands for every upstream failure: its details may
// name the camera's source, so the viewer is told no more.
var errStreamUnavailable = fmt.Errorf("stream unavailable: %w", httpjson.ErrUnavailable)

// AudioDroppedHeader is set on playlists served from a variant with audio
// when the camera's audio was left out because HLS players cannot decode it
// (G.711 and the like): its value names the codecs, e.g. "G711".
const AudioDroppedHeader = "X-Camgate-Audio-Dropped"

// allowedMethods is the Allow and Access-Control-Allow-Methods value.
const allowedMethods = "GET, HEAD, OPTIONS"

// Server is the HLS server for viewers. The HTTP front routes
// /hls/{camera}/{file} to Handle, whatever the method.
type Server struct {
	// Hub provides camera streams (required).
	Hub Hub
	// Admitter decides who may watch (required).
	Admitter session.Admitter
	// Sessions registers viewer sessions (required).
	Sessions Sessions
	// SegmentDuration is the minimum segment duration; a segment always
	// starts on a keyframe, so it is at least the camera's GOP (default 1 s).
	SegmentDuration time.Duration
	// PartDuration is the minimum LL-HLS part duration (default 200 ms).
	PartDuration time.Duration
	// SegmentCount is how many segments a playlist lists (default and
	// minimum for LL-HLS: 7).
	SegmentCount int
	// IdleTimeout ends an HLS session that made no request for this long
	// (default 60 s). A session that lost access keeps answering 403 until
	// it idles out.
	IdleTimeout time.Duration
	// BlockTimeout bounds how long a request may wait for the muxer:
	// LL-HLS blocking playlist reloads (_HLS_msn/_HLS_part), preload-hint
	// parts and the first playlist of a starting stream (default 8 s, under
	// the players' usual 10 s playlist timeout). Then it is answered 503.
	BlockTimeout time.Duration
	// MaxBlocking bounds the blocking requests one camera variant may have in
	// flight, counting those that timed out but whose muxer call has not
	// returned yet (default 256); beyond it requests get 503 at once.
	MaxBlocking int
	// MaxBlockingPerSession bounds one HLS session's share of them (default
	// 4: a player waits on at most one video and one audio playlist and their
	// preload-hint parts). Beyond it, a blocking playlist reload (_HLS_msn) is
	// answered at once with the current playlist, as a plain reload, while
	// the session has fewer than twice as many in flight; anything else gets
	// 503 with Retry-After. Players (hls.js) take an unchanged playlist
	// in their stride and retry a 503, while they give up on a 4xx.
	MaxBlockingPerSession int
	// QueueSize is the muxer's packet queue (default stream.DefaultQueueSize).
	QueueSize int
	// TranscodeAudio makes a camera's G.711 audio AAC (one ffmpeg process
	// per camera whose HLS with sound is being watched) instead of serving
	// it video-only. FFmpeg is the program (default "ffmpeg" on PATH);
	// without it the audio is dropped and said so, as with TranscodeAudio
	// off.
	TranscodeAudio bool
	FFmpeg         string
	// AllowOrigin is the Access-Control-Allow-Origin of every response,
	// errors included, so a player on another origin (hls.js on a web page)
	// can read playlists, segments and statuses (default "*"; the gateway
	// passes the WHEP server's setting). Credentials are never allowed
	// cross-origin: the session id rides in the URLs, the cookie is only a
	// same-origin fallback.
	AllowOrigin string
	// Logger (default: discard).
	Logger *slog.Logger

	allowOrigin atomic.Pointer[string] // AllowOrigin, then SetAllowOrigin's

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards muxers and their refs
	muxers map[string]*camMuxer

	sessMu   sync.RWMutex // guards sessions
	sessions map[string]*hlsSession
}

// Initialize applies defaults and starts the idle-session sweeper.
func (s *Server) Initialize() error {
	if s.Hub == nil || s.Admitter == nil || s.Sessions == nil {
		return errors.New("hls server: Hub, Admitter and Sessions are required")
	}
	if s.SegmentDuration <= 0 {
		s.SegmentDuration = time.Second
	}
	if s.PartDuration <= 0 {
		s.PartDuration = 200 * time.Millisecond
	}
	if s.SegmentCount < 7 {
		s.SegmentCount = 7
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = 60 * time.Second
	}
	if s.BlockTimeout <= 0 {
		s.BlockTimeout = 8 * time.Second
	}
	if s.MaxBlocking <= 0 {
		s.MaxBlocking = 256
	}
	if s.MaxBlockingPerSession <= 0 {
		s.MaxBlockingPerSession = 4
	}
	if s.AllowOrigin == "" {
		s.AllowOrigin = "*"
	}
	s.SetAllowOrigin(s.AllowOrigin)
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.muxers = make(map[string]*camMuxer)
	s.sessions = make(map[string]*hlsSession)
	s.wg.Add(1)
	go s.sweepLoop()
	return nil
}

// SetAllowOrigin changes AllowOrigin for the requests that follow ("" is
// "*"); safe while serving (a configuration reload).
func (s *Server) SetAllowOrigin(origin string) {
	if origin == "" {
		origin = "*"
	}
	s.allowOrigin.Store(&origin)
}

// Close ends every HLS session and muxer; blocked requests are released.
func (s *Server) Close() {
	s.cancel()
	s.sessMu.Lock()
	all := s.sessions
	s.sessions = map[string]*hlsSession{}
	s.sessMu.Unlock()
	for _, hs := range all {
		s.end(hs, "server closing", true)
	}
	s.mu.Lock()
	for _, cm := range s.muxers {
		cm.stop()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Handle serves GET /hls/{camera}/{file}: index.m3u8 (with ?token= the
// token exchange), media playlists, init files, segments and parts; and
// OPTIONS, the CORS preflight of a player on another origin.
func (s *Server) Handle(ctx *fasthttp.RequestCtx, camera, file string) {
	ctx.Response.Header.Set("Access-Control-Allow-Origin", *s.allowOrigin.Load())
	if ctx.IsOptions() {
		preflight(ctx)
		return
	}
	if err := s.handle(ctx, camera, file); err != nil {
		writeError(ctx, err)
	}
}

// preflight answers a CORS preflight. It needs no credentials (browsers send
// none with it): the request that follows is authorized as usual. Players
// send no custom headers by default; Authorization and Range are allowed for
// those that do (as mediamtx does).
func preflight(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Methods", allowedMethods)
	h.Set("Access-Control-Allow-Headers", "Authorization, Range")
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Allow", allowedMethods)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) handle(ctx *fasthttp.RequestCtx, camera, file string) error {
	if !ctx.IsGet() && !ctx.IsHead() {
		return errMethod
	}
	if !validCamera(camera) {
		return session.ErrUnknownCamera
	}
	kind, err := classifyFile(file)
	if err != nil {
		return err
	}
	q, err := parseQuery(ctx.QueryArgs())
	if err != nil {
		return err
	}
	sid := q.session
	exchange := kind == kindIndex && q.token != nil && sid == nil
	if sid == nil && !exchange {
		if c := ctx.Request.Header.Cookie(cookieName); len(c) > 0 {
			if !validSessionID(c) {
				return fmt.Errorf("%w: %s cookie", ErrBadRequest, cookieName)
			}
			sid = c
		}
	}
	var hs *hlsSession
	switch {
	case exchange:
		hs, err = s.admit(ctx, camera, string(q.token))
	case sid == nil:
		err = session.ErrUnauthenticated
	default:
		hs, err = s.authorize(camera, sid, time.Now())
	}
	if err != nil {
		return err
	}
	hs.inFlight.Add(1)
	err = s.serve(ctx, hs, kind, file, &q)
	if kind.blocking() { // it may have waited long: the session was active all along
		hs.lastSeen.Store(time.Now().UnixNano())
	}
	hs.inFlight.Add(-1)
	if err != nil {
		if exchange && !errors.Is(err, errBlockTimeout) {
			// The stream cannot be had: don't leave the session behind. (After a
			// timeout it stays, so the muxer keeps starting for the retry.)
			s.end(hs, "stream unavailable", true)
		}
		return err
	}
	if exchange {
		setSessionCookie(ctx, camera, hs.id)
	}
	return nil
}

// serve hands an authorized request to the camera variant's muxer.
func (s *Server) serve(ctx *fasthttp.RequestCtx, hs *hlsSession, kind fileKind, file string, q *query) error {
	var start time.Time
	if kind.blocking() {
		start = time.Now()
	}
	m, err := hs.mux.wait(s.BlockTimeout)
	if err != nil {
		return err
	}
	if kind.media() {
		if f := hs.mux.files.get(m, file); f != nil {
			ctx.Response.Header.SetContentType(f.contentType)
			ctx.Response.Header.Set("Cache-Control", mediaCacheControl)
			ctx.Response.SetBodyRaw(f.body) // immutable: no copy
			return nil
		}
	}
	var res muxerResult
	if kind.blocking() {
		// One BlockTimeout for the whole request, muxer start included.
		left := max(s.BlockTimeout-time.Since(start), time.Millisecond)
		mq, err := s.blockingQuery(hs, kind, q)
		if err != nil {
			return err
		}
		res, err = serveBlocking(ctx, m, file, mq, kind, left,
			&hs.mux.pending, int32(s.MaxBlocking), &hs.blocking)
		if err != nil {
			return err
		}
	} else {
		res = serveDirect(ctx, m, file)
	}
	switch res.status {
	case http.StatusOK:
		if kind.media() {
			hs.mux.files.put(m, file, ctx.Response.Body(), string(ctx.Response.Header.ContentType()))
		} else if d := hs.mux.droppedAudio(); d != "" {
			// The video-only variant has no audio to drop: only a viewer
			// allowed sound sees this.
			ctx.Response.Header.Set(AudioDroppedHeader, d)
			ctx.Response.Header.Set("Access-Control-Expose-Headers", AudioDroppedHeader) // a player on another origin may read it
		}
		return nil
	case 0, http.StatusNotFound:
		ctx.Response.ResetBody()
		return ErrUnknownFile
	case http.StatusBadRequest:
		ctx.Response.ResetBody()
		return ErrBadRequest
	default:
		ctx.Response.ResetBody()
		return errMuxerStopped
	}
}

// errSessionBlocking: the session has MaxBlockingPerSession blocking
// requests in flight already (503, like the camera's own bound).
var errSessionBlocking = fmt.Errorf("too many requests of this session waiting for the stream: %w", httpjson.ErrUnavailable)

// blockingQuery takes one of the session's blocking slots for a request and
// returns the query to run it with: its own, or, past MaxBlockingPerSession,
// that of a plain reload of the current playlist (which waits only for a
// muxer that has no segment yet, and so still counts, up to twice the cap).
func (s *Server) blockingQuery(hs *hlsSession, kind fileKind, q *query) (string, error) {
	n, limit := hs.blocking.Add(1), int32(s.MaxBlockingPerSession)
	switch {
	case n <= limit:
		return q.muxerQuery(hs.id, kind), nil
	case n <= 2*limit && kind == kindPlaylist && q.msn != nil:
		plain := query{skip: q.skip}
		return plain.muxerQuery(hs.id, kind), nil
	}
	hs.blocking.Add(-1)
	return "", errSessionBlocking
}

func setSessionCookie(ctx *fasthttp.RequestCtx, camera, id string) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(cookieName)
	c.SetValue(id)
	c.SetPath("/hls/" + camera + "/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	ctx.Response.Header.SetCookie(c)
}

// viewerError keeps what the HTTP front's one mapping knows and turns
// anything else (an upstream failure) into "stream unavailable".
func viewerError(err error) error {
	if code, _ := httpapi.StatusOf(err); code == http.StatusInternalServerError {
		return errStreamUnavailable
	}
	return err
}

// writeError answers err through the one mapping, dropping what the muxer
// may have started to answer (its body, a session cookie).
func writeError(ctx *fasthttp.RequestCtx, err error) {
	err = viewerError(err)
	ctx.Response.ResetBody()
	ctx.Response.Header.Del("Set-Cookie")
	if errors.Is(err, errMethod) {
		ctx.Response.Header.Set("Allow", allowedMethods)
	}
	httpapi.WriteErr(ctx, err)
	if errors.Is(err, httpjson.ErrUnavailable) {
		ctx.Response.Header.Set("Retry-After", "1") // the stream is coming: players retry soon
	}
}
