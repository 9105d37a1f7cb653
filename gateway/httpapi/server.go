// Package httpapi is camgate's HTTP front on fasthttp: the JSON API under
// /api/v1, the viewer endpoints (/hls, /whep, /archive, /s) and the
// operational ones (/healthz, /readyz, /metrics). It routes and maps errors
// to status codes, in one place; the work is done by the components it is
// given.
package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/jsonapi"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/internal/httpjson"
)

// Authz is what the API needs from the permission service.
type Authz interface {
	Handle(ctx context.Context, c authz.Caller, method string, parts []string, query url.Values, body []byte) (jsonapi.Result, error)
}

// Access is what the API needs from the enforcement point.
type Access interface {
	// AuthenticateAPI names the caller of a bearer credential (an admin key
	// or a viewer token), with the failure limiter of every edge.
	AuthenticateAPI(ctx context.Context, bearer string) (access.Principal, error)
	// SeesSession tells whether p may read (write=false) or kick (true)
	// session s: the sessions:read/write section and, with individual
	// access, only sessions on cameras within its reach.
	SeesSession(p access.Principal, s *session.Session, write bool) bool
	// MaySessions tells whether p may use the sessions section at all.
	MaySessions(p access.Principal, write bool) bool
}

// Sessions is what the API needs from the session registry.
type Sessions interface {
	List() []session.Session
	Get(id string) (session.Session, bool)
	Kick(id, reason string) bool
}

// Handler serves a viewer-facing request whose route parameters were
// already extracted and unescaped; an error is answered by WriteErr.
type Handler func(ctx *fasthttp.RequestCtx, params ...string) error

// APIHandler serves an /api/v1 request of an authenticated caller; parts
// are the path segments after /api/v1. An error is answered by WriteErr.
type APIHandler func(ctx *fasthttp.RequestCtx, p access.Principal, parts []string) error

// Server is the HTTP front.
type Server struct {
	// Address to listen on (default ":8080").
	Address string
	// TLSConfig, when set, makes the server speak HTTPS.
	TLSConfig *tls.Config
	// MaxBodyBytes bounds API request bodies (default 1 MiB); larger is 413.
	MaxBodyBytes int
	// MaxUploadBytes bounds media object uploads, the largest body the
	// server reads at all (default 32 MiB).
	MaxUploadBytes int
	// Authz serves the permission API (required).
	Authz Authz
	// Access authenticates API callers and scopes sessions (required).
	Access Access
	// Sessions lists and kicks viewer sessions (required).
	Sessions Sessions
	// Optional components; a nil one answers 404.
	HLS     Handler                              // /hls/{camera}/{file}
	WHEP    Handler                              // /whep/{camera}[/{id}]
	Archive Handler                              // /archive/{camera}/{rest...}
	Share   Handler                              // /s/{token}
	JWKS    func(ctx *fasthttp.RequestCtx) error // /.well-known/jwks.json
	API     map[string]APIHandler                // /api/v1/{kind}/... served by the gateway (links, cameras, ...)
	// Snapshot serves /api/v1/cameras/{camera}/snapshot.jpg (optional). It
	// is routed before the API's authentication: a snapshot is a viewer
	// endpoint (viewer or share-link token, ?token= or Bearer) that the
	// enforcement point decides like every live edge; authz never sees it.
	Snapshot Handler
	// Metrics writes the Prometheus text exposition.
	Metrics func(ctx *fasthttp.RequestCtx)
	// Ready reports whether the node can serve (nil = ready).
	Ready func() error
	// Logger (default: discard).
	Logger *slog.Logger

	srv     *fasthttp.Server
	ln      net.Listener
	served  chan struct{} // closed when Serve has returned
	maxBody atomic.Int64  // MaxBodyBytes, then SetMaxBodyBytes's
}

// SetMaxBodyBytes changes MaxBodyBytes for the requests that follow (a
// configuration reload). It is capped at MaxUploadBytes, the most the
// server reads at all, which only a restart changes; n <= 0 is ignored.
func (s *Server) SetMaxBodyBytes(n int) {
	if n > 0 {
		s.maxBody.Store(int64(min(n, s.MaxUploadBytes)))
	}
}

// Initialize listens and starts serving.
func (s *Server) Initialize() error {
	if s.Authz == nil || s.Sessions == nil || s.Access == nil {
		return errors.New("httpapi: Authz, Access and Sessions are required")
	}
	if s.Address == "" {
		s.Address = ":8080"
	}
	if s.MaxBodyBytes <= 0 {
		s.MaxBodyBytes = 1 << 20
	}
	if s.MaxUploadBytes < s.MaxBodyBytes {
		s.MaxUploadBytes = max(32<<20, s.MaxBodyBytes)
	}
	s.SetMaxBodyBytes(s.MaxBodyBytes)
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", s.Address)
	if err != nil {
		return fmt.Errorf("http: listen %s: %w", s.Address, err)
	}
	if s.TLSConfig != nil {
		ln = tls.NewListener(ln, s.TLSConfig)
	}
	s.ln = ln
	s.srv = &fasthttp.Server{
		Handler:               s.recovered(s.route),
		Name:                  "camgate",
		MaxRequestBodySize:    s.MaxUploadBytes,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           120 * time.Second,
		ReadBufferSize:        8192,
		NoDefaultServerHeader: false,
		NoDefaultContentType:  true,
		Logger:                fasthttpLogger{s.Logger},
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				WriteErr(ctx, fmt.Errorf("%w", httpjson.ErrTooLarge))
				return
			}
			var small *fasthttp.ErrSmallBuffer
			if errors.As(err, &small) {
				httpjson.WriteError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request line or headers too large")
				return
			}
			WriteErr(ctx, fmt.Errorf("%w: malformed request", httpjson.ErrBadRequest))
		},
	}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	return nil
}

// recovered answers a request whose handler panicked with a 500 and logs
// the panic with its stack at ERROR: fasthttp, unlike net/http, does not
// recover, and one bad request (a malformed file, a bug) would otherwise
// end the process, every camera's viewers and recordings with it.
func (s *Server) recovered(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer func() {
			if r := recover(); r != nil {
				s.Logger.Error("http: a request's handler panicked; answered 500, the server goes on",
					"method", string(ctx.Method()), "path", Redact(string(ctx.Path())), "panic", Redact(fmt.Sprint(r)), "stack", string(debug.Stack()))
				ctx.Response.Reset()
				httpjson.WriteError(ctx, fasthttp.StatusInternalServerError, "internal error")
			}
		}()
		h(ctx)
	}
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, waits (bounded) for open requests and joins the
// serving goroutine. The listener is closed here too: fasthttp's Shutdown
// does nothing when it runs before Serve has registered the listener (a
// server closed right after it started), and Serve would then run forever.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.ShutdownWithContext(ctx)
	_ = s.ln.Close()
	<-s.served
}

// fasthttpLogger takes fasthttp's own messages at debug. They may quote
// the raw bytes of a malformed request — its URL (?token=) and headers
// (Authorization: Bearer <admin key>) — so what is logged is redacted first.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	if !f.l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	f.l.Debug("fasthttp", "msg", Redact(fmt.Sprintf(format, args...)))
}

var (
	// quotedRequest is a Go-quoted string (fasthttp quotes the request
	// bytes it could not parse with %q).
	quotedRequest = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	// secretLike is what survives outside quotes: a credential-bearing
	// query parameter, an Authorization value, or anything shaped like a JWT.
	secretLike = regexp.MustCompile(`(?i)((?:token|access_token|key|password|secret)=)[^&\s"']+|(authorization:\s*\S+\s+)\S+|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)
)

// Redact removes from a log message every quoted request excerpt and every
// credential-looking value, so nothing logs a secret at any level.
func Redact(msg string) string {
	msg = quotedRequest.ReplaceAllString(msg, `"[redacted]"`)
	return secretLike.ReplaceAllStringFunc(msg, func(m string) string {
		sub := secretLike.FindStringSubmatch(m)
		switch {
		case sub[1] != "":
			return sub[1] + "[redacted]"
		case sub[2] != "":
			return sub[2] + "[redacted]"
		}
		return "[redacted]"
	})
}

// route dispatches on the first path segment: the one route table of the
// HTTP edge. Every error is answered by WriteErr.
func (s *Server) route(ctx *fasthttp.RequestCtx) {
	if err := s.dispatch(ctx); err != nil {
		WriteErr(ctx, err)
	}
}

func (s *Server) dispatch(ctx *fasthttp.RequestCtx) error {
	parts, err := SplitPath(ctx.URI().PathOriginal())
	if err != nil {
		return err
	}
	n := len(parts)
	first := ""
	if n > 0 {
		first = parts[0]
	}
	switch {
	case n == 1 && first == "healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case n == 1 && first == "readyz":
		s.readyz(ctx)
	case n == 1 && first == "metrics" && s.Metrics != nil:
		s.Metrics(ctx)
	case n == 2 && first == ".well-known" && parts[1] == "jwks.json" && s.JWKS != nil:
		return s.JWKS(ctx)
	case n == 5 && first == "api" && parts[1] == "v1" && parts[2] == "cameras" && parts[4] == "snapshot.jpg" && s.Snapshot != nil:
		return s.Snapshot(ctx, parts[3])
	case n >= 2 && first == "api" && parts[1] == "v1":
		return s.api(ctx, parts[2:])
	case first == "hls" && n == 3 && s.HLS != nil:
		return s.HLS(ctx, parts[1], parts[2])
	case first == "whep" && (n == 2 || n == 3) && s.WHEP != nil:
		return s.WHEP(ctx, parts[1:]...)
	case first == "archive" && n >= 3 && s.Archive != nil:
		return s.Archive(ctx, parts[1], strings.Join(parts[2:], "/"))
	case first == "s" && (n == 2 || n == 3) && s.Share != nil:
		return s.Share(ctx, parts[1:]...)
	default:
		return fmt.Errorf("%w: no such endpoint", httpjson.ErrNotFound)
	}
	return nil
}

// SplitPath splits a request's raw path into unescaped segments. A segment
// that unescapes to something containing a slash or a backslash, that is a
// dot segment ("." or ".."), or that is not valid percent-encoding is
// refused (400): an id never silently becomes another id or another path.
func SplitPath(raw []byte) ([]string, error) {
	p := string(raw)
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	p = strings.Trim(p, "/")
	if p == "" {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	for i, seg := range parts {
		if strings.IndexByte(seg, '%') >= 0 {
			u, err := url.PathUnescape(seg)
			if err != nil {
				return nil, fmt.Errorf("%w: path segment %q is not valid percent-encoding", httpjson.ErrBadRequest, seg)
			}
			if strings.ContainsAny(u, "/\\") {
				return nil, fmt.Errorf("%w: path segment %q contains an encoded slash", httpjson.ErrBadRequest, seg)
			}
			seg = u
		}
		if seg == "" || seg == "." || seg == ".." {
			return nil, fmt.Errorf("%w: empty or dot segment in the path", httpjson.ErrBadRequest)
		}
		if strings.ContainsFunc(seg, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("%w: control character in the path", httpjson.ErrBadRequest)
		}
		parts[i] = seg
	}
	return parts, nil
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=utf-8")
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("not ready: " + err.Error() + "\n")
			return
		}
	}
	ctx.SetBodyString("ready\n")
}

// BearerToken returns the bearer token of the Authorization header.
func BearerToken(ctx *fasthttp.RequestCtx) string {
	h := string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (s *Server) api(ctx *fasthttp.RequestCtx, parts []string) error {
	p, err := s.Access.AuthenticateAPI(ctx, BearerToken(ctx))
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("%w: no such endpoint", httpjson.ErrNotFound)
	}
	if parts[0] == "sessions" {
		return s.sessions(ctx, p, parts[1:])
	}
	if len(parts) == 3 && parts[0] == "devices" && parts[2] == "objects" {
		if h := s.API["objects"]; h != nil {
			return h(ctx, p, parts)
		}
	}
	if limit := s.maxBody.Load(); int64(len(ctx.PostBody())) > limit {
		return fmt.Errorf("%w: request body larger than %d bytes", httpjson.ErrTooLarge, limit)
	}
	if h := s.API[parts[0]]; h != nil {
		return h(ctx, p, parts)
	}
	if gatewayServed(parts) {
		// A gateway component's endpoint whose component is not configured
		// (or not at this depth): it is not authz's to answer.
		return errNotServed
	}
	query, err := url.ParseQuery(string(ctx.URI().QueryString()))
	if err != nil {
		return fmt.Errorf("%w: query: %w", httpjson.ErrBadRequest, err)
	}
	res, err := s.Authz.Handle(ctx, p.Caller(), string(ctx.Method()), parts, query, ctx.PostBody())
	if err != nil {
		return err
	}
	status := fasthttp.StatusOK
	if res.Created {
		status = fasthttp.StatusCreated
	}
	httpjson.WriteJSON(ctx, status, res.Body)
	return nil
}

// errNotServed answers (404) an endpoint of a gateway component that this
// server was not given.
var errNotServed = fmt.Errorf("%w", notServed{})

type notServed struct{}

func (notServed) Error() string        { return "not handled" }
func (notServed) Is(target error) bool { return target == httpjson.ErrNotFound }

// gatewayServed reports whether /api/v1/<parts...> belongs to a gateway
// component (share links, sessions, cameras, metrics, the event feed, device media
// objects) rather than to authz's API.
func gatewayServed(parts []string) bool {
	switch parts[0] {
	case "links", "sessions", "cameras", "metrics", "stream-credentials", "events":
		return true
	case "devices":
		return len(parts) >= 3 && parts[2] == "objects"
	}
	return false
}

func (s *Server) sessions(ctx *fasthttp.RequestCtx, p access.Principal, rest []string) error {
	method := string(ctx.Method())
	write := method == fasthttp.MethodDelete
	switch {
	case len(rest) == 0 && method == fasthttp.MethodGet, len(rest) == 1 && (method == fasthttp.MethodGet || write):
	default:
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, DELETE")
		return fmt.Errorf("%w: use GET /api/v1/sessions[/{id}] or DELETE /api/v1/sessions/{id}", httpjson.ErrMethodNotAllowed)
	}
	if !s.Access.MaySessions(p, write) {
		section := "sessions:read"
		if write {
			section = "sessions:write"
		}
		return fmt.Errorf("%w: %s is not allowed for this caller", access.ErrForbidden, section)
	}
	if len(rest) == 0 {
		all := s.Sessions.List()
		out := all[:0]
		for i := range all {
			if s.Access.SeesSession(p, &all[i], false) {
				out = append(out, all[i])
			}
		}
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"sessions": out})
		return nil
	}
	sess, ok := s.Sessions.Get(rest[0])
	if !ok || !s.Access.SeesSession(p, &sess, write) {
		return fmt.Errorf("%w: no such session", httpjson.ErrNotFound)
	}
	if !write {
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, sess)
		return nil
	}
	if !s.Sessions.Kick(rest[0], "kicked through the API by "+p.String()) {
		return fmt.Errorf("%w: no such session", httpjson.ErrNotFound)
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

// WriteJSON answers with v as JSON.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) { httpjson.WriteJSON(ctx, status, v) }
