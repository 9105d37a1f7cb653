package links

import (
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/internal/httpjson"
	"github.com/camgate/camgate/internal/strictjson"
)

// HandleAPI serves /api/v1/links[/{id}[/disable|/enable]] for an
// authenticated caller; parts are the path segments after /api/v1 (with or
// without the leading "links"):
//
//	POST   /links              create → 201 {id,url,token}
//	GET    /links              list (the caller's, or those an admin's reach includes)
//	GET    /links/{id}         one link, with its state; never the token
//	POST   /links/{id}/disable → 200 the link
//	POST   /links/{id}/enable  → 200 the link
//	DELETE /links/{id}         → 200 {"id","deleted":true}
//
// It writes successful answers; an error is returned for the HTTP front's
// one error mapping: *FieldError, ErrForbidden, ErrNotFound,
// httpjson.ErrMethodNotAllowed / ErrNotFound, or a store error.
func (s *Service) HandleAPI(ctx *fasthttp.RequestCtx, caller Creator, parts []string) error {
	if len(parts) > 0 && parts[0] == "links" {
		parts = parts[1:]
	}
	method := string(ctx.Method())
	switch {
	case len(parts) == 0 && method == fasthttp.MethodPost:
		var req CreateRequest
		if err := decodeJSON(ctx.PostBody(), &req); err != nil {
			return err
		}
		created, err := s.Create(caller, req)
		if err != nil {
			return err
		}
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
		httpjson.WriteJSON(ctx, fasthttp.StatusCreated, created)
	case len(parts) == 0 && method == fasthttp.MethodGet:
		list, err := s.List(caller)
		if err != nil {
			return err
		}
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, list)
	case len(parts) == 1 && method == fasthttp.MethodGet:
		v, err := s.Get(caller, parts[0], false)
		if err != nil {
			return err
		}
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, v)
	case len(parts) == 1 && method == fasthttp.MethodDelete:
		if _, err := s.Get(caller, parts[0], true); err != nil {
			return err
		}
		if err := s.Delete(parts[0]); err != nil {
			return err
		}
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"id": parts[0], "deleted": true})
	case len(parts) == 2 && method == fasthttp.MethodPost && (parts[1] == "disable" || parts[1] == "enable"):
		if _, err := s.Get(caller, parts[0], true); err != nil {
			return err
		}
		change := s.Disable
		if parts[1] == "enable" {
			change = s.Enable
		}
		v, err := change(parts[0])
		if err != nil {
			return err
		}
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, v)
	case len(parts) <= 2:
		return fmt.Errorf("%w: use POST/GET /api/v1/links, GET/DELETE /api/v1/links/{id}, POST /api/v1/links/{id}/disable or /enable", httpjson.ErrMethodNotAllowed)
	default:
		return fmt.Errorf("%w: no such endpoint", httpjson.ErrNotFound)
	}
	return nil
}

// HandleJWKS serves /.well-known/jwks.json: the link signing keys, so other
// services can verify link tokens. Short caching: keys rotate.
func (s *Service) HandleJWKS(ctx *fasthttp.RequestCtx) error {
	if !ctx.IsGet() && !ctx.IsHead() {
		return fmt.Errorf("%w: use GET", httpjson.ErrMethodNotAllowed)
	}
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "public, max-age=60")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetContentType("application/jwk-set+json")
	ctx.SetBody(s.JWKS())
	return nil
}

// decodeJSON decodes a create body with the shared strict decoder: unknown
// fields, wrong types, duplicate keys (issue 15 hole 13) and trailing data
// are a *FieldError naming the field.
func decodeJSON(body []byte, v *CreateRequest) error {
	err := strictjson.Decode(body, v, strictjson.Options{ValueHint: "invalid value (times are RFC 3339, e.g. 2026-05-01T08:00:00Z)"})
	var se *strictjson.Error
	if errors.As(err, &se) {
		return fieldErr(se.Field, se.Msg)
	}
	return err
}
