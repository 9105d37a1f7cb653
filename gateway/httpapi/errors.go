package httpapi

import (
	"errors"
	"fmt"
	"math"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/ptz"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/httpjson"
	"github.com/camgate/camgate/internal/strictjson"
	"github.com/camgate/camgate/links"
)

// StatusOf is the one error→status mapping of camgate's HTTP edge: the
// API, HLS, WHEP, the archive, share links and PTZ all answer through it,
// so one refusal is one status everywhere (a full share link is 429 on
// every protocol, a rate-limited client 429, an unreachable store 503).
// msg is what the client is told: for a 5xx it hides internals.
func StatusOf(err error) (status int, msg string) {
	var (
		afe *authz.FieldError
		lfe *links.FieldError
		sfe *strictjson.Error
	)
	msg = err.Error()
	switch {
	case errors.As(err, &afe), errors.As(err, &lfe), errors.As(err, &sfe),
		errors.Is(err, httpjson.ErrBadRequest), errors.Is(err, archive.ErrBadRequest):
		return fasthttp.StatusBadRequest, msg
	case errors.Is(err, session.ErrRateLimited), errors.Is(err, links.ErrTooManyViewers):
		return fasthttp.StatusTooManyRequests, msg
	case errors.Is(err, session.ErrUnavailable), errors.Is(err, authz.ErrStoreUnavailable):
		return fasthttp.StatusServiceUnavailable, "authorization is temporarily unavailable (the permission store is unreachable); try again shortly"
	case errors.Is(err, links.ErrStoreUnavailable):
		return fasthttp.StatusServiceUnavailable, "share links are temporarily unavailable (the link store is unreachable or refuses writes); try again shortly"
	case errors.Is(err, session.ErrUnauthenticated), errors.Is(err, archive.ErrUnauthenticated),
		errors.Is(err, links.ErrInvalid), errors.Is(err, links.ErrUnknownKey),
		errors.Is(err, links.ErrExpired), errors.Is(err, links.ErrNotYetValid):
		return fasthttp.StatusUnauthorized, msg
	case errors.Is(err, authz.ErrMethodNotAllowed), errors.Is(err, httpjson.ErrMethodNotAllowed):
		return fasthttp.StatusMethodNotAllowed, msg
	case errors.Is(err, access.ErrNotVisible),
		errors.Is(err, authz.ErrNotFound),
		errors.Is(err, session.ErrUnknownCamera), errors.Is(err, stream.ErrUnknownCamera),
		errors.Is(err, archive.ErrUnknownCamera), errors.Is(err, archive.ErrNotFound),
		errors.Is(err, links.ErrNotFound), errors.Is(err, httpjson.ErrNotFound):
		return fasthttp.StatusNotFound, msg
	case errors.Is(err, authz.ErrForbidden), errors.Is(err, session.ErrForbidden),
		errors.Is(err, archive.ErrForbidden), errors.Is(err, links.ErrForbidden):
		return fasthttp.StatusForbidden, msg
	case errors.Is(err, authz.ErrConflict):
		return fasthttp.StatusConflict, msg
	case errors.Is(err, httpjson.ErrGone):
		return fasthttp.StatusGone, msg
	case errors.Is(err, httpjson.ErrTooLarge), errors.Is(err, archive.ErrTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, msg
	case errors.Is(err, httpjson.ErrUnsupportedMediaType), errors.Is(err, archive.ErrUnsupported):
		return fasthttp.StatusUnsupportedMediaType, msg
	case errors.Is(err, httpjson.ErrUnavailable):
		return fasthttp.StatusServiceUnavailable, msg
	}
	return fasthttp.StatusInternalServerError, "internal error"
}

// WriteErr answers err as JSON {"error": …} with its status (StatusOf) and
// the headers that status needs: Retry-After on 429 and 503,
// WWW-Authenticate on 401. PTZ errors keep their richer body (the field,
// or who holds the camera). Nothing else in camgate picks an error status.
func WriteErr(ctx *fasthttp.RequestCtx, err error) {
	if isPTZError(err) {
		status, body := ptz.HTTPError(err)
		httpjson.WriteJSON(ctx, status, body)
		return
	}
	status, msg := StatusOf(err)
	switch status {
	case fasthttp.StatusTooManyRequests:
		retry := 30
		var rl *session.RateLimitedError
		if errors.As(err, &rl) {
			retry = int(math.Ceil(rl.RetryAfter.Seconds()))
		}
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, fmt.Sprint(max(retry, 1)))
		ctx.Response.Header.Add("Access-Control-Expose-Headers", "Retry-After")
	case fasthttp.StatusServiceUnavailable:
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "5")
		ctx.Response.Header.Add("Access-Control-Expose-Headers", "Retry-After")
	case fasthttp.StatusUnauthorized:
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="camgate"`)
	}
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	httpjson.WriteError(ctx, status, msg)
}

func isPTZError(err error) bool {
	var (
		field  *ptz.FieldError
		held   *ptz.ErrLeaseHeld
		camErr *ptz.CameraError
	)
	return errors.As(err, &field) || errors.As(err, &held) || errors.As(err, &camErr) ||
		errors.Is(err, ptz.ErrCommandTooLarge) || errors.Is(err, ptz.ErrNotConfigured) ||
		errors.Is(err, ptz.ErrTimeout) || errors.Is(err, ptz.ErrUnreachable)
}
