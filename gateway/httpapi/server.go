// Package httpapi is camgate's HTTP front on fasthttp: the JSON API under
// /api/v1, the viewer endpoints (/hls, /whep, /archive, /s) and the
// operational ones (/healthz, /readyz, /metrics). It routes and maps errors
// to status codes, in one place; the work is done by the components it is
// given.
package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/session"
)

// Authz is what the API needs from the permission service.
type Authz interface {
	Authenticate(adminKey string) (authz.Caller, bool)
	Handle(ctx context.Context, c authz.Caller, method string, parts []string, query url.Values, body []byte) (authz.APIResult, error)
}

// Sessions is what the API needs from the session registry.
type Sessions interface {
	List() []session.Session
	Get(id string) (session.Session, bool)
	Kick(id, reason string) bool
}

// Handler serves a request whose route parameters were already extracted.
type Handler func(ctx *fasthttp.RequestCtx, params ...string)

// APIHandler serves an /api/v1 request of an authenticated caller; parts
// are the path segments after /api/v1.
type APIHandler func(ctx *fasthttp.RequestCtx, c authz.Caller, parts []string)

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
	// ViewerSubject verifies a viewer token for API calls made with one
	// (required): privacy managers, share creators, recipients.
	ViewerSubject func(token string) (string, error)
	// Sessions lists and kicks viewer sessions (required).
	Sessions Sessions
	// MaySessions tells whether a caller may list (write=false) or kick
	// (write=true) sessions (default: root and admins).
	MaySessions func(c authz.Caller, write bool) bool
	// Optional components; a nil one answers 404.
	HLS     Handler               // /hls/{camera}/{file}
	WHEP    Handler               // /whep/{camera}[/{id}]
	Archive Handler               // /archive/{camera}/{rest...}
	Share   Handler               // /s/{token}
	JWKS    Handler               // /.well-known/jwks.json
	API     map[string]APIHandler // /api/v1/{kind}/... served by the gateway (links, cameras, ...)
	// Metrics writes the Prometheus text exposition.
	Metrics func(ctx *fasthttp.RequestCtx)
	// Ready reports whether the node can serve (nil = ready).
	Ready func() error
	// Logger (default: discard).
	Logger *slog.Logger

	srv     *fasthttp.Server
	ln      net.Listener
	maxBody atomic.Int64 // MaxBodyBytes, then SetMaxBodyBytes's
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
	if s.Authz == nil || s.Sessions == nil || s.ViewerSubject == nil {
		return errors.New("httpapi: Authz, Sessions and ViewerSubject are required")
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
	if s.MaySessions == nil {
		s.MaySessions = func(c authz.Caller, _ bool) bool { return c.Root || c.Admin != "" }
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
		Handler:               s.route,
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
				WriteError(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large")
				return
			}
			var small *fasthttp.ErrSmallBuffer
			if errors.As(err, &small) {
				WriteError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request line or headers too large")
				return
			}
			WriteError(ctx, fasthttp.StatusBadRequest, "malformed request")
		},
	}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting and waits (bounded) for open requests.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.ShutdownWithContext(ctx)
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp", "msg", fmt.Sprintf(format, args...))
}

// route dispatches on the first path segment.
func (s *Server) route(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case path == "/readyz":
		s.readyz(ctx)
	case path == "/metrics" && s.Metrics != nil:
		s.Metrics(ctx)
	case path == "/.well-known/jwks.json" && s.JWKS != nil:
		s.JWKS(ctx)
	case parts[0] == "api" && len(parts) >= 2 && parts[1] == "v1":
		s.api(ctx, parts[2:])
	case parts[0] == "hls" && len(parts) == 3 && s.HLS != nil:
		s.HLS(ctx, parts[1], parts[2])
	case parts[0] == "whep" && (len(parts) == 2 || len(parts) == 3) && s.WHEP != nil:
		s.WHEP(ctx, parts[1:]...)
	case parts[0] == "archive" && len(parts) >= 3 && s.Archive != nil:
		s.Archive(ctx, parts[1], strings.Join(parts[2:], "/"))
	case parts[0] == "s" && (len(parts) == 2 || len(parts) == 3) && s.Share != nil:
		s.Share(ctx, parts[1:]...)
	default:
		WriteError(ctx, fasthttp.StatusNotFound, "no such endpoint")
	}
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

// caller authenticates an API request: an admin key, else a viewer token.
func (s *Server) caller(ctx *fasthttp.RequestCtx) (authz.Caller, bool) {
	tok := BearerToken(ctx)
	if tok == "" {
		return authz.Caller{}, false
	}
	if c, ok := s.Authz.Authenticate(tok); ok {
		return c, true
	}
	sub, err := s.ViewerSubject(tok)
	if err != nil || sub == "" {
		return authz.Caller{}, false
	}
	return authz.Caller{Subject: sub}, true
}

func (s *Server) api(ctx *fasthttp.RequestCtx, parts []string) {
	c, ok := s.caller(ctx)
	if !ok {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="camgate"`)
		WriteError(ctx, fasthttp.StatusUnauthorized, "missing or invalid credentials: send Authorization: Bearer <admin key or viewer token>")
		return
	}
	if len(parts) == 0 || parts[0] == "" {
		WriteError(ctx, fasthttp.StatusNotFound, "no such endpoint")
		return
	}
	if parts[0] == "sessions" {
		s.sessions(ctx, c, parts[1:])
		return
	}
	if len(parts) == 3 && parts[0] == "devices" && parts[2] == "objects" {
		if h := s.API["objects"]; h != nil {
			h(ctx, c, parts)
			return
		}
	}
	if limit := s.maxBody.Load(); int64(len(ctx.PostBody())) > limit {
		WriteError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", limit))
		return
	}
	if h := s.API[parts[0]]; h != nil {
		h(ctx, c, parts)
		return
	}
	query, err := url.ParseQuery(string(ctx.URI().QueryString()))
	if err != nil {
		WriteError(ctx, fasthttp.StatusBadRequest, "query: "+err.Error())
		return
	}
	res, err := s.Authz.Handle(ctx, c, string(ctx.Method()), parts, query, ctx.PostBody())
	if err != nil {
		WriteAPIError(ctx, err)
		return
	}
	status := fasthttp.StatusOK
	if res.Created {
		status = fasthttp.StatusCreated
	}
	WriteJSON(ctx, status, res.Body)
}

func (s *Server) sessions(ctx *fasthttp.RequestCtx, c authz.Caller, rest []string) {
	method := string(ctx.Method())
	switch {
	case len(rest) == 0 && method == fasthttp.MethodGet:
		if !s.MaySessions(c, false) {
			WriteError(ctx, fasthttp.StatusForbidden, "sessions:read is not allowed for this caller")
			return
		}
		WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"sessions": s.Sessions.List()})
	case len(rest) == 1 && method == fasthttp.MethodGet:
		if !s.MaySessions(c, false) {
			WriteError(ctx, fasthttp.StatusForbidden, "sessions:read is not allowed for this caller")
			return
		}
		sess, ok := s.Sessions.Get(rest[0])
		if !ok {
			WriteError(ctx, fasthttp.StatusNotFound, "no such session")
			return
		}
		WriteJSON(ctx, fasthttp.StatusOK, sess)
	case len(rest) == 1 && method == fasthttp.MethodDelete:
		if !s.MaySessions(c, true) {
			WriteError(ctx, fasthttp.StatusForbidden, "sessions:write is not allowed for this caller")
			return
		}
		if !s.Sessions.Kick(rest[0], "kicked through the API") {
			WriteError(ctx, fasthttp.StatusNotFound, "no such session")
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	default:
		WriteError(ctx, fasthttp.StatusMethodNotAllowed, "use GET /api/v1/sessions[/{id}] or DELETE /api/v1/sessions/{id}")
	}
}

// WriteJSON answers with v as JSON.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(ctx, fasthttp.StatusInternalServerError, "encoding the answer failed")
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// WriteError answers {"error": msg}.
func WriteError(ctx *fasthttp.RequestCtx, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// WriteAPIError maps the errors of the API components to a status, in one place.
func WriteAPIError(ctx *fasthttp.RequestCtx, err error) {
	var fe *authz.FieldError
	switch {
	case errors.As(err, &fe):
		WriteError(ctx, fasthttp.StatusBadRequest, err.Error())
	case errors.Is(err, authz.ErrNotFound), errors.Is(err, authz.ErrNotHandled):
		WriteError(ctx, fasthttp.StatusNotFound, err.Error())
	case errors.Is(err, authz.ErrForbidden):
		WriteError(ctx, fasthttp.StatusForbidden, err.Error())
	case errors.Is(err, authz.ErrConflict):
		WriteError(ctx, fasthttp.StatusConflict, err.Error())
	case errors.Is(err, authz.ErrStoreUnavailable), errors.Is(err, session.ErrUnavailable):
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "5")
		WriteError(ctx, fasthttp.StatusServiceUnavailable, "the permission store is unreachable; try again shortly")
	case errors.Is(err, session.ErrUnauthenticated):
		WriteError(ctx, fasthttp.StatusUnauthorized, err.Error())
	case errors.Is(err, session.ErrForbidden):
		WriteError(ctx, fasthttp.StatusForbidden, err.Error())
	case errors.Is(err, session.ErrUnknownCamera):
		WriteError(ctx, fasthttp.StatusNotFound, err.Error())
	case errors.Is(err, session.ErrRateLimited):
		var rl *session.RateLimitedError
		if errors.As(err, &rl) {
			ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, fmt.Sprint(int(rl.RetryAfter.Seconds()+1)))
		}
		WriteError(ctx, fasthttp.StatusTooManyRequests, err.Error())
	default:
		WriteError(ctx, fasthttp.StatusInternalServerError, "internal error")
	}
}
