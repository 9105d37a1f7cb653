package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/session"
)

type fakeAuthz struct{ last authz.Caller }

func (f *fakeAuthz) Authenticate(key string) (authz.Caller, bool) {
	return authz.Caller{Admin: "ops"}, key == "admin-key"
}

func (f *fakeAuthz) Handle(_ context.Context, c authz.Caller, method string, parts []string, _ url.Values, body []byte) (authz.APIResult, error) {
	f.last = c
	switch parts[0] {
	case "grants":
		if method == "POST" {
			return authz.APIResult{Created: true, Body: map[string]string{"id": "g1"}}, nil
		}
		return authz.APIResult{}, authz.ErrNotFound
	case "bad":
		return authz.APIResult{}, &authz.FieldError{Field: "actions", Msg: "unknown action"}
	case "boom":
		return authz.APIResult{}, errors.New("disk on fire")
	}
	return authz.APIResult{}, authz.ErrNotHandled
}

type fakeSessions struct{}

func (fakeSessions) List() []session.Session            { return []session.Session{{ID: "s1"}} }
func (fakeSessions) Get(string) (session.Session, bool) { return session.Session{}, false }
func (fakeSessions) Kick(id, reason string) bool        { return id == "s1" }

func newServer(t *testing.T) (*Server, string, *fakeAuthz) {
	fa := &fakeAuthz{}
	s := &Server{Address: "127.0.0.1:0", Authz: fa, Sessions: fakeSessions{}, MaxBodyBytes: 1024,
		ViewerSubject: func(tok string) (string, error) {
			if tok == "viewer-token" {
				return "alice", nil
			}
			return "", errors.New("bad token")
		}}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, "http://" + s.Addr().String(), fa
}

func do(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestStatusMapping(t *testing.T) {
	_, base, fa := newServer(t)
	cases := []struct {
		name, method, path, auth, body string
		want                           int
		wantBody                       string
	}{
		{"no credentials", "GET", "/api/v1/grants/x", "", "", 401, "credentials"},
		{"wrong key", "GET", "/api/v1/grants/x", "nope", "", 401, "credentials"},
		{"created", "POST", "/api/v1/grants", "admin-key", "{}", 201, `"id":"g1"`},
		{"not found", "GET", "/api/v1/grants/x", "admin-key", "", 404, "not found"},
		{"field error", "PUT", "/api/v1/bad/x", "admin-key", "{}", 400, "actions"},
		{"internal error hides detail", "GET", "/api/v1/boom", "admin-key", "", 500, "internal error"},
		{"body too large", "POST", "/api/v1/grants", "admin-key", strings.Repeat("x", 2048), 413, "larger"},
		{"unknown endpoint", "GET", "/nope", "", "", 404, "no such endpoint"},
		{"viewer lists sessions", "GET", "/api/v1/sessions", "viewer-token", "", 403, "sessions:read"},
		{"admin lists sessions", "GET", "/api/v1/sessions", "admin-key", "", 200, `"s1"`},
		{"kick", "DELETE", "/api/v1/sessions/s1", "admin-key", "", 204, ""},
		{"kick unknown", "DELETE", "/api/v1/sessions/zz", "admin-key", "", 404, "no such session"},
		{"healthz", "GET", "/healthz", "", "", 200, "ok"},
		{"readyz", "GET", "/readyz", "", "", 200, "ready"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := do(t, c.method, base+c.path, c.auth, c.body)
			if code != c.want || !strings.Contains(body, c.wantBody) {
				t.Fatalf("%d %s, want %d containing %q", code, body, c.want, c.wantBody)
			}
		})
	}
	if code, _ := do(t, "POST", base+"/api/v1/grants", "viewer-token", "{}"); code != 201 || fa.last.Subject != "alice" {
		t.Fatalf("viewer token caller: %d %+v", code, fa.last)
	}
}
