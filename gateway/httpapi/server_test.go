package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/jsonapi"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/session"
)

type fakeAuthz struct{ last authz.Caller }

// fakeAccess authenticates "admin-key" as admin ops and "viewer-token" as
// subject alice; admins may use sessions, and see those on camera "mine".
type fakeAccess struct{}

func (fakeAccess) AuthenticateAPI(_ context.Context, bearer string) (access.Principal, error) {
	switch bearer {
	case "admin-key":
		return access.Principal{Kind: access.KindAdmin, ID: "ops"}, nil
	case "viewer-token":
		return access.Principal{Kind: access.KindSubject, ID: "alice"}, nil
	}
	return access.Principal{}, fmt.Errorf("%w: missing or invalid credentials", session.ErrUnauthenticated)
}

func (fakeAccess) MaySessions(p access.Principal, _ bool) bool { return p.IsAdmin() }

func (fakeAccess) SeesSession(p access.Principal, s *session.Session, _ bool) bool {
	return p.IsAdmin() && s.Camera == "mine"
}

func (f *fakeAuthz) Handle(_ context.Context, c authz.Caller, method string, parts []string, _ url.Values, body []byte) (jsonapi.Result, error) {
	f.last = c
	switch parts[0] {
	case "grants":
		if method == "POST" {
			return jsonapi.Result{Created: true, Body: map[string]string{"id": "g1"}}, nil
		}
		if method == "PATCH" {
			return jsonapi.Result{}, authz.ErrMethodNotAllowed
		}
		return jsonapi.Result{}, authz.ErrNotFound
	case "bad":
		return jsonapi.Result{}, &authz.FieldError{Field: "actions", Msg: "unknown action"}
	case "boom":
		return jsonapi.Result{}, errors.New("disk on fire")
	}
	return jsonapi.Result{}, authz.ErrNotFound
}

type fakeSessions struct{}

func (fakeSessions) List() []session.Session {
	return []session.Session{{ID: "s1", Camera: "mine"}, {ID: "s2", Camera: "theirs"}}
}

func (f fakeSessions) Get(id string) (session.Session, bool) {
	for _, s := range f.List() {
		if s.ID == id {
			return s, true
		}
	}
	return session.Session{}, false
}
func (fakeSessions) Kick(id, reason string) bool { return id == "s1" || id == "s2" }

func newServer(t *testing.T) (*Server, string, *fakeAuthz) {
	fa := &fakeAuthz{}
	s := &Server{Address: "127.0.0.1:0", Authz: fa, Access: fakeAccess{}, Sessions: fakeSessions{}, MaxBodyBytes: 1024}
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
		{"authz method not allowed", "PATCH", "/api/v1/grants/x", "admin-key", "", 405, "method not allowed"},
		{"not found", "GET", "/api/v1/grants/x", "admin-key", "", 404, "not found"},
		{"field error", "PUT", "/api/v1/bad/x", "admin-key", "{}", 400, "actions"},
		{"internal error hides detail", "GET", "/api/v1/boom", "admin-key", "", 500, "internal error"},
		{"body too large", "POST", "/api/v1/grants", "admin-key", strings.Repeat("x", 2048), 413, "larger"},
		{"unknown endpoint", "GET", "/nope", "", "", 404, "no such endpoint"},
		{"viewer lists sessions", "GET", "/api/v1/sessions", "viewer-token", "", 403, "sessions:read"},
		{"admin lists sessions", "GET", "/api/v1/sessions", "admin-key", "", 200, `"s1"`},
		{"kick", "DELETE", "/api/v1/sessions/s1", "admin-key", "", 204, ""},
		{"kick unknown", "DELETE", "/api/v1/sessions/zz", "admin-key", "", 404, "no such session"},
		{"list hides sessions outside the reach", "GET", "/api/v1/sessions", "admin-key", "", 200, `"sessions":[{"id":"s1"`},
		{"kick outside the reach is as unknown", "DELETE", "/api/v1/sessions/s2", "admin-key", "", 404, "no such session"},
		{"read outside the reach is as unknown", "GET", "/api/v1/sessions/s2", "admin-key", "", 404, "no such session"},
		{"encoded slash in an id", "PUT", "/api/v1/sites/a%2F..%2Fb", "admin-key", "{}", 400, "encoded slash"},
		{"encoded dot segment", "GET", "/api/v1/sites/%2e%2e", "admin-key", "", 400, "dot segment"},
		{"method not allowed", "PATCH", "/api/v1/sessions/s1", "admin-key", "", 405, "use GET"},
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

// A malformed request at log_level debug made fasthttp log the raw request
// (the admin key in Authorization, ?token= in the URL): nothing secret may
// reach a logger.
func TestRedactRemovesSecrets(t *testing.T) {
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	cases := []string{
		fmt.Sprintf("error when serving connection: cannot parse %q", "GET /hls/cam1/index.m3u8?token="+jwt+" HTTP/1.1\r\nAuthorization: Bearer root-admin-key\r\n"),
		"GET /archive/cam1/download?start=x&token=" + jwt + "&end=y",
		"authorization: Bearer root-admin-key",
		"bare " + jwt + " in text",
	}
	for _, msg := range cases {
		got := Redact(msg)
		for _, secret := range []string{"root-admin-key", jwt, "c2lnbmF0dXJl"} {
			if strings.Contains(got, secret) {
				t.Errorf("Redact(%q) = %q still holds %q", msg, got, secret)
			}
		}
	}
}

func TestSplitPath(t *testing.T) {
	cases := []struct {
		raw  string
		want []string
		bad  bool
	}{
		{"/api/v1/sites/hq", []string{"api", "v1", "sites", "hq"}, false},
		{"/hls/cam%201/index.m3u8", []string{"hls", "cam 1", "index.m3u8"}, false},
		{"/api/v1/sites/a%2F..%2Fb", nil, true},
		{"/api/v1/sites/a%5c..%5cb", nil, true},
		{"/api/v1/sites/%2e%2e", nil, true},
		{"/api/v1/sites/../admins", nil, true},
		{"/api/v1//sites", nil, true},
		{"/api/v1/sites/a%zz", nil, true},
		{"/api/v1/sites/a%00b", nil, true},
	}
	for _, c := range cases {
		got, err := SplitPath([]byte(c.raw))
		if c.bad {
			if err == nil {
				t.Errorf("SplitPath(%q) = %q, want a 400", c.raw, got)
			} else if status, _ := StatusOf(err); status != 400 {
				t.Errorf("SplitPath(%q) error %v maps to %d, want 400", c.raw, err, status)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("SplitPath(%q) = %q, %v; want %q", c.raw, got, err, c.want)
		}
	}
}

// The gateway's own API endpoints are routed here, never handed to authz:
// without their component they are a 404, and authz is not asked.
func TestGatewayEndpointsNeverReachAuthz(t *testing.T) {
	_, base, fa := newServer(t)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/links"},
		{"POST", "/api/v1/links/l1/disable"},
		{"GET", "/api/v1/cameras/cam1/snapshot.jpg"},
		{"GET", "/api/v1/metrics"},
		{"POST", "/api/v1/devices/cam1/objects"},
		{"POST", "/api/v1/devices/cam1/objects/x"},
	} {
		fa.last = authz.Caller{}
		status, body := do(t, tc.method, base+tc.path, "admin-key", "{}")
		if status != 404 || !strings.Contains(body, "not handled") {
			t.Errorf("%s %s = %d %s; want 404 not handled", tc.method, tc.path, status, body)
		}
		if fa.last != (authz.Caller{}) {
			t.Errorf("%s %s reached authz as %v", tc.method, tc.path, fa.last)
		}
	}
}

// The snapshot route reaches its handler before the API authenticates (a
// share-link token is no API caller but may take a snapshot), with the
// camera id unescaped, and never reaches authz; other depths under
// /api/v1/cameras stay the API's.
func TestSnapshotRoute(t *testing.T) {
	s, base, fa := newServer(t)
	var got []string
	s.Snapshot = func(ctx *fasthttp.RequestCtx, p ...string) error {
		got = append(got, p...)
		ctx.SetBodyString("jpeg")
		return nil
	}
	if code, body := do(t, "GET", base+"/api/v1/cameras/cam%201/snapshot.jpg?token=link", "", ""); code != 200 || body != "jpeg" {
		t.Fatalf("%d %s", code, body)
	}
	if len(got) != 1 || got[0] != "cam 1" {
		t.Fatalf("handler got %q", got)
	}
	if code, _ := do(t, "GET", base+"/api/v1/cameras/cam1/x/snapshot.jpg", "", ""); code != 401 {
		t.Fatalf("another depth: %d, want the API's 401", code)
	}
	if fa.last != (authz.Caller{}) {
		t.Fatalf("authz saw %+v", fa.last)
	}
}

// TestHandlerPanicIsA500: a handler that panics (a bug, a file that trips
// one) gets its request a 500 and an ERROR with the stack; the server, and
// the process, go on serving.
func TestHandlerPanicIsA500(t *testing.T) {
	s, base, _ := newServer(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	s.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	s.Archive = func(ctx *fasthttp.RequestCtx, p ...string) error {
		if p[0] == "boom" {
			var parts []int
			_ = parts[len(p)] // index out of range
		}
		ctx.SetBodyString("ok")
		return nil
	}
	if code, body := do(t, "GET", base+"/archive/boom/index.m3u8?token=secret-token", "", ""); code != 500 || !strings.Contains(body, "internal error") {
		t.Fatalf("a panicking handler: %d %s, want 500", code, body)
	}
	if code, body := do(t, "GET", base+"/archive/cam1/index.m3u8", "", ""); code != 200 || body != "ok" {
		t.Fatalf("after the panic: %d %s", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "index out of range") || !strings.Contains(l, "server_test.go") || strings.Contains(l, "secret-token") {
		t.Fatalf("the panic's log: %s", l)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
