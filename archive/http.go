package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// maxFuture bounds how far past the server's clock a requested time may be
// (client clock skew); anything later is a malformed request.
const maxFuture = time.Hour

// minTime: no footage predates it; earlier times are typing mistakes.
var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// parseTime parses an RFC 3339 query time within [2000, now+1h].
func parseTime(field, v string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %q is not an RFC 3339 time (e.g. 2026-11-22T10:00:00Z)", ErrBadRequest, field, v)
	}
	if t.Before(minTime) {
		return time.Time{}, fmt.Errorf("%w: %s: %s is before 2000", ErrBadRequest, field, v)
	}
	if t.After(now.Add(maxFuture)) {
		return time.Time{}, fmt.Errorf("%w: %s: %s is in the future", ErrBadRequest, field, v)
	}
	return t.UTC(), nil
}

// ParseRange parses the start and end query parameters: both RFC 3339,
// start before end, at most maxSpan apart. A missing end is now when
// endOptional, an error otherwise.
func ParseRange(start, end string, now time.Time, maxSpan time.Duration, endOptional bool) (time.Time, time.Time, error) {
	if start == "" {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: start is required (RFC 3339)", ErrBadRequest)
	}
	s, err := parseTime("start", start, now)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	e := now.UTC()
	switch {
	case end != "":
		if e, err = parseTime("end", end, now); err != nil {
			return time.Time{}, time.Time{}, err
		}
	case !endOptional:
		return time.Time{}, time.Time{}, fmt.Errorf("%w: end is required (RFC 3339)", ErrBadRequest)
	}
	if !s.Before(e) {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: start must be before end", ErrBadRequest)
	}
	if e.Sub(s) > maxSpan {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: range %v is longer than the %v allowed", ErrBadRequest, e.Sub(s), maxSpan)
	}
	return s, e, nil
}

// rangeRequest checks a request's camera and its start and end (see
// ParseRange); a bad one is answered here (false).
func (s *Store) rangeRequest(ctx *fasthttp.RequestCtx, camera string, maxSpan time.Duration, endOptional bool) (time.Time, time.Time, bool) {
	if err := checkName("camera", camera); err != nil {
		s.writeError(ctx, err)
		return time.Time{}, time.Time{}, false
	}
	q := ctx.QueryArgs()
	start, end, err := ParseRange(string(q.Peek("start")), string(q.Peek("end")), s.Now(), maxSpan, endOptional)
	if err != nil {
		s.writeError(ctx, err)
		return time.Time{}, time.Time{}, false
	}
	return start, end, true
}

// segmentRequest checks a request's camera and segment name and returns
// the segment's start; a bad one is answered here (false).
func (s *Store) segmentRequest(ctx *fasthttp.RequestCtx, camera, id string) (time.Time, bool) {
	if err := checkName("camera", camera); err != nil {
		s.writeError(ctx, err)
		return time.Time{}, false
	}
	start, ok := parseSegmentName(id, time.UTC)
	if !ok {
		s.writeError(ctx, fmt.Errorf("%w: segment %q is not a segment name (2006-01-02_15-04-05-000000)", ErrBadRequest, id))
	}
	return start, ok
}

// token returns the viewer token: ?token= or Authorization: Bearer.
func token(ctx *fasthttp.RequestCtx) string {
	if t := ctx.QueryArgs().Peek("token"); len(t) > 0 {
		return string(t)
	}
	if h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization); len(h) > 7 && strings.EqualFold(string(h[:7]), "bearer ") {
		return string(bytes.TrimSpace(h[7:]))
	}
	return ""
}

// statusOf decides every HTTP status of the archive in one place.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return fasthttp.StatusBadRequest
	case errors.Is(err, ErrUnauthenticated):
		return fasthttp.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return fasthttp.StatusForbidden
	case errors.Is(err, ErrUnknownCamera), errors.Is(err, ErrNotFound):
		return fasthttp.StatusNotFound
	case errors.Is(err, ErrTooLarge):
		return fasthttp.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnsupported):
		return fasthttp.StatusUnsupportedMediaType
	default:
		return fasthttp.StatusServiceUnavailable
	}
}

func (s *Store) writeError(ctx *fasthttp.RequestCtx, err error) {
	if s.WriteError != nil {
		if statusOf(err) == fasthttp.StatusServiceUnavailable {
			s.Logger.Warn("archive: request failed", "path", string(ctx.Path()), "error", err)
		}
		s.WriteError(ctx, err)
		return
	}
	code := statusOf(err)
	msg := err.Error()
	if code == fasthttp.StatusServiceUnavailable {
		s.Logger.Warn("archive: request failed", "path", string(ctx.Path()), "error", err)
		msg = "archive temporarily unavailable"
	}
	writeJSON(ctx, code, map[string]string{"error": msg})
}

func writeJSON(ctx *fasthttp.RequestCtx, code int, v any) {
	b, _ := json.Marshal(v)
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetBody(b)
}

// authorize asks the Authorizer, refusing an empty token first.
func (s *Store) authorize(ctx context.Context, tok, camera, action string, footage time.Time) (Viewer, error) {
	if tok == "" {
		return Viewer{}, errNoToken
	}
	v, err := s.Authorizer.Authorize(ctx, tok, camera, action, footage)
	if err != nil {
		return Viewer{}, footageError(action, camera, footage, err)
	}
	return v, nil
}

var errNoToken = fmt.Errorf("%w: a token is required (?token= or Authorization: Bearer)", ErrUnauthenticated)

func footageError(action, camera string, footage time.Time, err error) error {
	return fmt.Errorf("%s of %s at %s: %w", action, camera, footage.UTC().Format(time.RFC3339), err)
}

// requestAuth authorizes the footage times of one request: with a
// RequestAuthorizer the token is verified once (begin), otherwise each time
// is a full Authorize.
type requestAuth struct {
	s                *Store
	ctx              context.Context
	tok, camera, act string
	grant            Grant // nil: ask s.Authorizer each time
}

// begin starts authorizing a request's footage times.
func (s *Store) begin(ctx context.Context, tok, camera, action string) (*requestAuth, error) {
	if tok == "" {
		return nil, errNoToken
	}
	r := &requestAuth{s: s, ctx: ctx, tok: tok, camera: camera, act: action}
	if ra, ok := s.Authorizer.(RequestAuthorizer); ok {
		g, err := ra.Begin(ctx, tok, camera, action)
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", action, camera, err)
		}
		r.grant = g
	}
	return r, nil
}

// seesNodes reports whether the request's viewer may learn cluster node
// ids (NodesGrant); without a Grant saying so, it may not.
func (r *requestAuth) seesNodes() bool {
	g, ok := r.grant.(NodesGrant)
	return ok && g.SeesNodes()
}

// authorize decides one footage time of the request.
func (r *requestAuth) authorize(footage time.Time) (Viewer, error) {
	if r.grant == nil {
		return r.s.authorize(r.ctx, r.tok, r.camera, r.act, footage)
	}
	v, err := r.grant.Allow(footage)
	if err != nil {
		return Viewer{}, footageError(r.act, r.camera, footage, err)
	}
	return v, nil
}

// Handle routes the archive's URLs and reports whether the path was one of
// them. The integrator may route each handler itself instead:
//
//	GET  /archive/{camera}/index.m3u8   ServePlaylist
//	GET  /archive/{camera}/{segment}.mp4 ServeSegment
//	GET  /archive/{camera}/download     ServeDownload
//	GET  /archive/{camera}/recordings   ServeRecordings
//	GET  /archive/{device}/objects/{id} ServeObject
//	POST /api/v1/devices/{id}/objects   ServeUpload (the caller must be an authenticated admin)
func (s *Store) Handle(ctx *fasthttp.RequestCtx) bool {
	path := string(ctx.Path()) // normalized by fasthttp: no "..", no "//"
	switch {
	case strings.HasPrefix(path, "/archive/"):
		parts := strings.Split(path[len("/archive/"):], "/")
		if !ctx.IsGet() && !ctx.IsHead() {
			writeJSON(ctx, fasthttp.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
			return true
		}
		switch {
		case len(parts) == 2 && parts[1] == "index.m3u8":
			s.ServePlaylist(ctx, parts[0])
		case len(parts) == 2 && parts[1] == "recordings":
			s.ServeRecordings(ctx, parts[0])
		case len(parts) == 2 && parts[1] == "download":
			s.ServeDownload(ctx, parts[0])
		case len(parts) == 2 && strings.HasSuffix(parts[1], segmentExt):
			s.ServeSegment(ctx, parts[0], strings.TrimSuffix(parts[1], segmentExt))
		case len(parts) == 3 && parts[1] == "objects":
			s.ServeObject(ctx, parts[0], parts[2])
		default:
			writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "no such archive resource"})
		}
		return true
	case strings.HasPrefix(path, "/api/v1/devices/") && strings.HasSuffix(path, "/objects"):
		id := strings.TrimSuffix(path[len("/api/v1/devices/"):], "/objects")
		if strings.Contains(id, "/") {
			return false
		}
		if !ctx.IsPost() {
			writeJSON(ctx, fasthttp.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
			return true
		}
		s.ServeUpload(ctx, id)
		return true
	}
	return false
}
