package links

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/internal/httpjson"
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

// decodeJSON decodes a create body strictly: unknown fields, wrong types,
// duplicate keys and trailing data are a *FieldError naming the field.
func decodeJSON(body []byte, v *CreateRequest) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fieldErr("body", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(body, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr("body", "unexpected data after the JSON object")
	}
	// Duplicate keys are last-wins in encoding/json: refuse them, as authz
	// does for its API bodies (issue 15 hole 13).
	if err := authz.CheckDuplicateKeys(body); err != nil {
		var fe *authz.FieldError
		if errors.As(err, &fe) {
			return fieldErr(fe.Field, fe.Msg)
		}
		return fieldErr("body", err.Error())
	}
	return nil
}

func jsonFieldError(body []byte, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fieldErr(te.Field, "want "+te.Type.String())
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fieldErr(strings.Trim(rest, `"`), "unknown field")
	}
	// A bad time does not name its field: try each field alone.
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) == nil {
		for _, k := range slices.Sorted(maps.Keys(raw)) {
			one, _ := json.Marshal(map[string]json.RawMessage{k: raw[k]})
			if json.Unmarshal(one, new(CreateRequest)) != nil {
				return fieldErr(k, "invalid value (times are RFC 3339, e.g. 2026-05-01T08:00:00Z)")
			}
		}
	}
	return fieldErr("body", "invalid JSON")
}
