package authz

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"
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
// ErrConflict → 409, ErrNotHandled → not authz's; anything else → 500.
func (s *Service) Handle(ctx context.Context, c Caller, method string, parts []string, query url.Values, body []byte) (APIResult, error) {
	if len(parts) == 0 {
		return APIResult{}, ErrNotFound
	}
	switch parts[0] {
	case "links", "sessions", "cameras", "metrics":
		return APIResult{}, ErrNotHandled
	case kindDevices:
		if len(parts) >= 3 && parts[2] == "objects" {
			return APIResult{}, ErrNotHandled
		}
	}
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
	res, err := r.route()
	// Another node committed between our validation and our commit: the model
	// has caught up, so validate and commit again against it.
	for attempt := 0; attempt < maxCommitRetries && errors.Is(err, ErrRevisionConflict); attempt++ {
		r.now = s.Now()
		res, err = r.route()
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

// decodeJSON decodes body into v, rejecting unknown fields, duplicate keys
// and trailing data with a FieldError naming the field.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fieldErr("body", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f := failingField(body, v); f != "" {
			return fieldErr(f, cleanJSONError(err))
		}
		return jsonFieldError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr("body", "unexpected data after the JSON object")
	}
	return CheckDuplicateKeys(body)
}

// failingField finds which top-level field of body fails to decode into a
// value of v's type (errors from a field's UnmarshalJSON, such as a bad time,
// do not name the field).
func failingField(body []byte, v any) string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return ""
	}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	t := reflect.TypeOf(v).Elem()
	for _, k := range names {
		one, _ := json.Marshal(map[string]json.RawMessage{k: raw[k]})
		dec := json.NewDecoder(bytes.NewReader(one))
		dec.DisallowUnknownFields()
		if dec.Decode(reflect.New(t).Interface()) != nil {
			return k
		}
	}
	return ""
}

func cleanJSONError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "json:") {
		return msg[i+2:]
	}
	return strings.TrimPrefix(msg, "json: ")
}

func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := te.Field
		if f == "" {
			f = "body"
		}
		return fieldErr(f, "want "+te.Type.String())
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fieldErr(strings.Trim(rest, `"`), "unknown field")
	}
	// Errors from a field's UnmarshalJSON ("json: cannot unmarshal ... into Go struct field X.y of type ...").
	if i := strings.Index(msg, "Go struct field "); i >= 0 {
		f := msg[i+len("Go struct field "):]
		if j := strings.IndexByte(f, ' '); j >= 0 {
			f = f[:j]
		}
		if j := strings.IndexByte(f, '.'); j >= 0 {
			f = f[j+1:]
		}
		return fieldErr(f, msg)
	}
	return fieldErr("body", "invalid JSON: "+msg)
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
