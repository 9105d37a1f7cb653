package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/camgate/camgate/internal/strictjson"
)

// Caller is who calls the JSON API: a bootstrap admin key (Root), an admin
// created through the API (Admin), or a viewer subject from a verified JWT
// (Subject).
type Caller struct {
	Root    bool
	Admin   string
	Subject string
}

func (c Caller) String() string {
	switch {
	case c.Root:
		return "root"
	case c.Admin != "":
		return "admin:" + c.Admin
	case c.Subject != "":
		return "subject:" + c.Subject
	}
	return "anonymous"
}

// APIResult is a successful API answer: Created selects 201, Body is
// marshalled to JSON by the HTTP layer.
type APIResult struct {
	Created bool
	Body    any
}

// request is one API call being served.
type request struct {
	s      *Service
	ctx    context.Context
	c      Caller
	method string
	parts  []string
	query  url.Values
	body   []byte
	now    time.Time
}

// isResourceKind reports whether k is a record kind served by the generic handlers.
func isResourceKind(k string) bool {
	switch k {
	case kindOrgs, kindSites, kindDevices, kindSubjects, kindGroups, kindRoles,
		kindGrants, kindShares, kindRequests, kindAdmins:
		return true
	}
	return false
}

// maxCommitRetries bounds how often Handle re-runs a write that lost a
// revision race against another node.
const maxCommitRetries = 5

// Handle serves /api/v1/<parts...> for authz's kinds and actions (DESIGN §6).
// Errors: *FieldError → 400, ErrNotFound → 404, ErrForbidden → 403,
// ErrConflict → 409; anything else → 500. Share links, sessions and the
// other gateway endpoints are routed by the gateway, not here.
func (s *Service) Handle(ctx context.Context, c Caller, method string, parts []string, query url.Values, body []byte) (APIResult, error) {
	if len(parts) == 0 {
		return APIResult{}, ErrNotFound
	}
	return s.run(ctx, c, method, parts, query, body, (*request).route)
}

// run serves one call — HTTP-shaped (Handle) or typed — as the same
// request: the caller must be someone, every id in parts must be valid, a
// write that lost a revision race is validated and committed again, and
// writes (and refused reads) are audited under method and parts, so the
// typed methods and the JSON API leave the same trail.
func (s *Service) run(ctx context.Context, c Caller, method string, parts []string, query url.Values, body []byte, fn func(*request) (APIResult, error)) (APIResult, error) {
	if !c.Root && c.Admin == "" && c.Subject == "" {
		return APIResult{}, ErrForbidden
	}
	for i, p := range parts[1:] {
		if !validID(p) {
			f := "id"
			if i > 0 {
				f = "path"
			}
			return APIResult{}, fieldErr(f, fmt.Sprintf("%q is not a valid id", p))
		}
	}
	r := &request{s: s, ctx: ctx, c: c, method: method, parts: parts, query: query, body: body, now: s.Now()}
	res, err := fn(r)
	// Another node committed between our validation and our commit: the model
	// has caught up, so validate and commit again against it.
	for attempt := 0; attempt < maxCommitRetries && errors.Is(err, ErrRevisionConflict); attempt++ {
		r.now = s.Now()
		res, err = fn(r)
	}
	if method != "GET" {
		r.auditWrite(err)
	} else if errors.Is(err, ErrForbidden) {
		r.auditWrite(err)
	}
	return res, err
}

func (r *request) auditWrite(err error) {
	e := AuditEntry{Time: r.now, Who: r.c.String(), What: r.method + " " + strings.Join(r.parts, "/"), Allowed: err == nil}
	switch {
	case err == nil:
		e.Why = "ok"
	case errors.Is(err, ErrForbidden):
		e.Why = err.Error()
	default:
		return // bad input and conflicts change nothing and deny nothing
	}
	r.s.audit.add(e)
}

func (r *request) route() (APIResult, error) {
	p := r.parts
	switch p[0] {
	case "check":
		return r.only("GET", r.check)
	case "audit":
		return r.only("GET", r.auditPage)
	case "bulk-access":
		return r.only("POST", r.bulkAccess)
	}
	if !isResourceKind(p[0]) {
		return APIResult{}, ErrNotFound
	}
	switch len(p) {
	case 1:
		switch r.method {
		case "GET":
			return r.list(p[0])
		case "POST":
			return r.put(p[0], "")
		}
	case 2:
		switch r.method {
		case "GET":
			return r.get(p[0], p[1])
		case "PUT":
			return r.put(p[0], p[1])
		case "DELETE":
			return r.del(p[0], p[1])
		}
	case 3:
		return r.action(p[0], p[1], p[2])
	default:
		return APIResult{}, ErrNotFound
	}
	return APIResult{}, fmt.Errorf("method %s: %w", r.method, errMethod)
}

// errMethod is a 405.
var errMethod = ErrMethodNotAllowed

func (r *request) only(method string, fn func() (APIResult, error)) (APIResult, error) {
	if r.method != method {
		return APIResult{}, errMethod
	}
	return fn()
}

// decodeJSON decodes body into v with the shared strict decoder: unknown
// fields, duplicate keys and trailing data are a FieldError naming the field.
func decodeJSON(body []byte, v any) error {
	return asFieldError(strictjson.Decode(body, v, strictjson.Options{}))
}

// CheckDuplicateKeys reports a key that appears twice in one object of the
// JSON text body, at any depth (keys match regardless of case, as
// encoding/json matches them), as a *FieldError naming the key's path; text
// that is not valid JSON is a *FieldError naming "body". See
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

func newID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func parseTimeParam(q url.Values, name string) (time.Time, bool, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, false, fieldErr(name, "want an RFC 3339 time")
	}
	return t, true, nil
}
