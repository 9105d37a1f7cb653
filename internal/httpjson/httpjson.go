// Package httpjson holds what every HTTP component of camgate shares and
// nothing else: writing a JSON answer or a JSON error body, and the generic
// error kinds (bad request, not found, method not allowed, …) a component
// wraps so that the one error→status mapping (gateway/httpapi.WriteErr) can
// answer for it. It is a leaf: it imports no camgate package, so links and
// archive use it without importing the gateway.
package httpjson

import (
	"encoding/json"
	"errors"

	"github.com/valyala/fasthttp"
)

// Generic error kinds. Components wrap them (fmt.Errorf("…: %w", ErrX));
// gateway/httpapi maps each to its status in one place.
var (
	// ErrBadRequest: malformed input that no field error describes (400).
	ErrBadRequest = errors.New("bad request")
	// ErrNotFound: no such endpoint or resource (404).
	ErrNotFound = errors.New("not found")
	// ErrMethodNotAllowed: the resource exists, the method does not (405).
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrTooLarge: the request body is over a limit (413).
	ErrTooLarge = errors.New("request body too large")
	// ErrUnsupportedMediaType: the body's type is not accepted (415).
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrGone: the resource existed and will not come back (410).
	ErrGone = errors.New("gone")
	// ErrUnavailable: the service cannot answer for now, e.g. a camera's
	// stream is not up yet (503; the component's message is kept, so it
	// must not name internals such as a source URL).
	ErrUnavailable = errors.New("service unavailable")
)

// WriteJSON answers status with v as JSON.
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

// WriteError answers status with {"error": msg}.
func WriteError(ctx *fasthttp.RequestCtx, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}
