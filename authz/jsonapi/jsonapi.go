// Package jsonapi is authz's JSON transport. It routes the /api/v1 paths
// that belong to the permission model (DESIGN §6: the record kinds, their
// actions, bulk-access, check and audit) to the typed methods of
// authz.Service, decodes bodies with the strict decoder links uses too
// (internal/strictjson: unknown fields, duplicate keys and trailing data
// are refused, naming the field), reads query parameters, and refuses
// read-only fields that authz's typed methods would silently ignore.
//
// It decides no rule and no status. Its errors are authz's, which the HTTP
// edge (gateway/httpapi) maps in one place: *authz.FieldError → 400,
// authz.ErrForbidden → 403, authz.ErrNotFound → 404, authz.ErrConflict →
// 409, authz.ErrMethodNotAllowed → 405.
package jsonapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/internal/strictjson"
)

// Result is a successful answer: Created selects 201 over 200, Body is
// marshalled to JSON by the HTTP edge.
type Result struct {
	Created bool
	Body    any
}

// Handler serves authz's part of /api/v1 from Service.
type Handler struct {
	Service *authz.Service
}

// Handle serves /api/v1/<parts...> with the query and body of the request.
// Share links, sessions, cameras and the other gateway endpoints are routed
// by the gateway, not here.
func (h Handler) Handle(ctx context.Context, c authz.Caller, method string, parts []string, query url.Values, body []byte) (Result, error) {
	if len(parts) == 0 {
		return Result{}, authz.ErrNotFound
	}
	// What every operation checks first, before routing, so that a
	// nobody or a malformed id gets the same answer on every path.
	if !c.Root && c.Admin == "" && c.Subject == "" {
		return Result{}, authz.ErrForbidden
	}
	for i, p := range parts[1:] {
		if !authz.ValidID(p) {
			f := "id"
			if i > 0 {
				f = "path"
			}
			return Result{}, fieldErr(f, fmt.Sprintf("%q is not a valid id", p))
		}
	}
	s := h.Service
	switch parts[0] {
	case "check":
		return only(method, "GET", func() (Result, error) { return check(ctx, s, c, query) })
	case "audit":
		return only(method, "GET", func() (Result, error) { return audit(ctx, s, c, query) })
	case "bulk-access":
		return only(method, "POST", func() (Result, error) { return bulk(ctx, s, c, body) })
	}
	kind := parts[0]
	if !authz.IsKind(kind) {
		return Result{}, authz.ErrNotFound
	}
	switch len(parts) {
	case 1:
		switch method {
		case "GET":
			return list(ctx, s, c, kind, query)
		case "POST":
			return put(ctx, s, c, kind, "", body)
		}
	case 2:
		id := parts[1]
		switch method {
		case "GET":
			rec, err := s.Get(ctx, c, kind, id)
			return Result{Body: rec}, err
		case "PUT":
			return put(ctx, s, c, kind, id, body)
		case "DELETE":
			if err := s.Delete(ctx, c, kind, id); err != nil {
				return Result{}, err
			}
			return Result{Body: map[string]any{"id": id, "deleted": true}}, nil
		}
	case 3:
		return action(ctx, s, c, method, kind, parts[1], parts[2], query)
	default:
		return Result{}, authz.ErrNotFound
	}
	return Result{}, fmt.Errorf("method %s: %w", method, authz.ErrMethodNotAllowed)
}

func only(method, want string, fn func() (Result, error)) (Result, error) {
	if method != want {
		return Result{}, authz.ErrMethodNotAllowed
	}
	return fn()
}

func fieldErr(field, msg string) error { return &authz.FieldError{Field: field, Msg: msg} }

// Decode decodes body into v with the shared strict decoder; what it
// refuses is an *authz.FieldError naming the field.
func Decode(body []byte, v any) error {
	return asFieldError(strictjson.Decode(body, v, strictjson.Options{}))
}

// CheckDuplicateKeys reports a key that appears twice in one object of the
// JSON text body, at any depth (keys match regardless of case, as
// encoding/json matches them), as an *authz.FieldError naming the key's
// path; text that is not valid JSON is one naming "body". See
// strictjson.CheckDuplicateKeys.
func CheckDuplicateKeys(body []byte) error {
	return asFieldError(strictjson.CheckDuplicateKeys(body))
}

func asFieldError(err error) error {
	var se *strictjson.Error
	if errors.As(err, &se) {
		return fieldErr(se.Field, se.Msg)
	}
	return err
}

// list is GET /{kind}?field=value…: the query's parameters are the filter.
func list(ctx context.Context, s *authz.Service, c authz.Caller, kind string, q url.Values) (Result, error) {
	f := authz.ListFilter{}
	for k := range q {
		f[k] = q.Get(k)
	}
	recs, err := s.List(ctx, c, kind, f)
	return Result{Body: recs}, err
}

// put is POST /{kind} (id "") and PUT /{kind}/{id}. The body is decoded
// before anything else, so its errors come first; a commit retry (Put asks
// for a fresh copy) decodes it again.
func put(ctx context.Context, s *authz.Service, c authz.Caller, kind, id string, body []byte) (Result, error) {
	first := authz.NewRecord(kind)
	if err := Decode(body, first); err != nil {
		return Result{}, err
	}
	fresh := func() any {
		if rec := first; rec != nil {
			first = nil
			return rec
		}
		rec := authz.NewRecord(kind)
		_ = Decode(body, rec) // decoded without error above
		return rec
	}
	guard := func(old any) error { return checkReadOnly(kind, body, old) }
	rec, created, err := s.Put(ctx, c, kind, id, fresh, guard)
	return Result{Created: created, Body: rec}, err
}

func bulk(ctx context.Context, s *authz.Service, c authz.Caller, body []byte) (Result, error) {
	var b authz.BulkRequest
	if err := Decode(body, &b); err != nil {
		return Result{}, err
	}
	res, err := s.BulkAccess(ctx, c, b)
	if err != nil {
		return Result{}, err
	}
	return Result{Body: res}, nil
}
