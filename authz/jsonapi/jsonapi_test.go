package jsonapi_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/jsonapi"
)

// The transport decides no rule, but it orders what it reports: routing
// (404, 405) comes before anything else, and who may ask before a
// malformed parameter, so a caller learns nothing from a bad query that it
// would not learn from a good one. The rules themselves are tested through
// this transport by package authz's tables.

func newAPI(t *testing.T) jsonapi.Handler {
	t.Helper()
	s := &authz.Service{DataDir: t.TempDir()}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	h := jsonapi.Handler{Service: s}
	root := authz.Caller{Root: true}
	for _, r := range []struct{ path, body string }{
		{"orgs/acme", `{"name":"Acme"}`},
		{"sites/hq", `{"org":"acme"}`},
		{"devices/cam1", `{"site":"hq","kind":"camera","source":"builtin:demo"}`},
		{"subjects/alice", `{"kind":"user"}`},
		{"subjects/bob", `{"kind":"user"}`},
	} {
		if _, err := h.Handle(context.Background(), root, "PUT", strings.Split(r.path, "/"), nil, []byte(r.body)); err != nil {
			t.Fatalf("PUT %s: %v", r.path, err)
		}
	}
	return h
}

func TestTransportOrdersItsAnswers(t *testing.T) {
	h := newAPI(t)
	alice := authz.Caller{Subject: "alice"}
	root := authz.Caller{Root: true}
	for _, tc := range []struct {
		name   string
		c      authz.Caller
		method string
		path   string
		body   string
		want   error  // errors.Is, or
		field  string // a FieldError naming it
	}{
		{"nobody", authz.Caller{}, "GET", "nonsense", "", authz.ErrForbidden, ""},
		{"unknown path", root, "GET", "nonsense", "", authz.ErrNotFound, ""},
		{"bad id before routing", root, "GET", "nonsense/a$b", "", nil, "id"},
		{"too deep", root, "GET", "devices/cam1/alarm/x", "", authz.ErrNotFound, ""},
		{"method on a record", root, "POST", "devices/cam1", "{}", authz.ErrMethodNotAllowed, ""},
		{"method on check", root, "POST", "check", "", authz.ErrMethodNotAllowed, ""},
		{"unknown verb before method", root, "GET", "devices/cam1/explode", "", authz.ErrNotFound, ""},
		{"known verb, wrong method", root, "GET", "devices/cam1/alarm", "", authz.ErrMethodNotAllowed, ""},
		{"check: a viewer asking about another, bad action", alice, "GET", "check?subject=bob&device=cam1&action=fly", "", authz.ErrForbidden, ""},
		{"check: a viewer asking about another, bad time", alice, "GET", "check?subject=bob&device=cam1&action=live&at=noon", "", authz.ErrForbidden, ""},
		{"check: device missing before bad action", root, "GET", "check?subject=bob&action=fly", "", nil, "device"},
		{"check: bad action", root, "GET", "check?subject=bob&device=cam1&action=fly", "", nil, "action"},
		{"check: bad time", root, "GET", "check?subject=bob&device=cam1&action=live&at=noon", "", nil, "at"},
		{"check: bad footage", root, "GET", "check?subject=bob&device=cam1&action=archive&footage=x", "", nil, "footage"},
		{"audit: a viewer with a bad limit", alice, "GET", "audit?limit=x", "", authz.ErrForbidden, ""},
		{"audit: bad limit", root, "GET", "audit?limit=x", "", nil, "limit"},
		{"audit: limit too large", root, "GET", "audit?limit=1001", "", nil, "limit"},
		{"audit: bad allowed", root, "GET", "audit?allowed=maybe", "", nil, "allowed"},
		{"read-only field on create", root, "PUT", "sites/lobby", `{"parent":"hq","armed":true}`, nil, "armed"},
		{"unknown field", root, "PUT", "sites/lobby", `{"parent":"hq","colour":"red"}`, nil, "colour"},
		{"duplicate key", root, "PUT", "sites/lobby", `{"parent":"hq","Parent":"hq"}`, nil, "Parent"},
		{"bulk body", root, "POST", "bulk-access", `{"subjects":"alice"}`, nil, "subjects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, rawQuery, _ := strings.Cut(tc.path, "?")
			q, _ := url.ParseQuery(rawQuery)
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			_, err := h.Handle(context.Background(), tc.c, tc.method, strings.Split(p, "/"), q, body)
			if tc.field != "" {
				var fe *authz.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Fatalf("err %v; want a FieldError naming %q", err, tc.field)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v; want %v", err, tc.want)
			}
		})
	}
	// Nothing above changed the model: lobby was never created.
	if _, err := h.Service.Get(context.Background(), root, authz.KindSites, "lobby"); !errors.Is(err, authz.ErrNotFound) {
		t.Fatalf("refused writes created sites/lobby: %v", err)
	}
}

// A GET-modify-PUT sends read-only fields back unchanged and is accepted;
// a changed read-only value is refused naming it.
func TestReadOnlyRoundTrip(t *testing.T) {
	h := newAPI(t)
	root := authz.Caller{Root: true}
	ctx := context.Background()
	if _, err := h.Handle(ctx, root, "POST", []string{"sites", "hq", "arm"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, root, "PUT", []string{"sites", "hq"}, nil, []byte(`{"org":"acme","name":"HQ","armed":true}`)); err != nil {
		t.Fatalf("the stored armed sent back: %v", err)
	}
	_, err := h.Handle(ctx, root, "PUT", []string{"sites", "hq"}, nil, []byte(`{"org":"acme","armed":false}`))
	var fe *authz.FieldError
	if !errors.As(err, &fe) || fe.Field != "armed" {
		t.Fatalf("err %v; want a FieldError naming armed", err)
	}
	st, _ := h.Service.Get(ctx, root, authz.KindSites, "hq")
	if !st.(*authz.Site).Armed {
		t.Fatal("a refused PUT disarmed the site")
	}
}
