package links_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/links"
)

// serve routes like the gateway's HTTP front will, on an in-memory listener.
// The caller of /api/v1 is given by the X-Test-Caller header ("root" or a
// subject id): authentication is the front's job, not this package's.
func serve(t *testing.T, s *links.Service) *fasthttp.Client {
	t.Helper()
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		parts := strings.Split(strings.Trim(path, "/"), "/")
		switch {
		case path == "/.well-known/jwks.json":
			if err := s.HandleJWKS(ctx); err != nil {
				httpapi.WriteErr(ctx, err)
			}
		case len(parts) >= 3 && parts[0] == "api" && parts[1] == "v1":
			c := links.Creator{Subject: string(ctx.Request.Header.Peek("X-Test-Caller"))}
			if c.Subject == "root" {
				c = links.Creator{Root: true}
			}
			if err := s.HandleAPI(ctx, c, parts[2:]); err != nil {
				httpapi.WriteErr(ctx, err) // the gateway's one error mapping
			}
		case len(parts) == 3 && parts[0] == "s" && parts[1] == "assets":
			s.HandleAsset(ctx, parts[2])
		case len(parts) == 2 && parts[0] == "s":
			s.HandleViewerPage(ctx, parts[1])
		default:
			ctx.SetStatusCode(404)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(); _ = ln.Close() })
	return &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
}

type answer struct {
	status int
	header map[string]string
	body   string
}

func do(t *testing.T, c *fasthttp.Client, method, path, caller, body string) answer {
	t.Helper()
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI("http://camgate" + path)
	req.Header.SetMethod(method)
	if caller != "" {
		req.Header.Set("X-Test-Caller", caller)
	}
	if body != "" {
		req.SetBodyString(body)
		req.Header.SetContentType("application/json")
	}
	if err := c.DoTimeout(req, res, 10*time.Second); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	a := answer{status: res.StatusCode(), body: string(res.Body()), header: map[string]string{}}
	for k, v := range res.Header.All() {
		a.header[string(k)] = string(v)
	}
	return a
}

func TestAPI(t *testing.T) {
	e := newEnv(t)
	e.world.allowShare("bob", "cam1", true)
	c := serve(t, e.svc)
	end := t0.Add(time.Hour).Format(time.RFC3339)

	bad := []struct{ name, body, field string }{
		{"unknown field", `{"device":"cam1","not_after":"` + end + `","colour":"red"}`, "colour"},
		{"bad time", `{"device":"cam1","not_after":"tomorrow"}`, "not_after"},
		{"wrong type", `{"device":"cam1","not_after":"` + end + `","max_viewers":"two"}`, "max_viewers"},
		{"missing not_after", `{"device":"cam1"}`, "not_after"},
		{"empty body", ``, "body"},
	}
	for _, tc := range bad {
		a := do(t, c, "POST", "/api/v1/links", "bob", tc.body)
		var got struct{ Error string }
		if a.status != 400 || json.Unmarshal([]byte(a.body), &got) != nil || !strings.HasPrefix(got.Error, tc.field+":") {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.name, a.status, a.body, tc.field)
		}
	}
	if a := do(t, c, "POST", "/api/v1/links", "eve", `{"device":"cam1","not_after":"`+end+`"}`); a.status != 403 {
		t.Errorf("eve without share: %d %s, want 403", a.status, a.body)
	}

	a := do(t, c, "POST", "/api/v1/links", "bob", `{"device":"cam1","actions":["live"],"not_after":"`+end+`","max_viewers":3}`)
	var created links.Created
	if a.status != 201 || json.Unmarshal([]byte(a.body), &created) != nil || created.ID == "" || created.Token == "" ||
		created.URL != "https://cams.example.com/s/"+created.Token || a.header["Cache-Control"] != "no-store" {
		t.Fatalf("create: %d %v %s", a.status, a.header, a.body)
	}

	a = do(t, c, "GET", "/api/v1/links", "bob", "")
	var list []map[string]any
	if a.status != 200 || json.Unmarshal([]byte(a.body), &list) != nil || len(list) != 1 {
		t.Fatalf("list: %d %s", a.status, a.body)
	}
	if list[0]["state"] != "active" || list[0]["enabled"] != true || strings.Contains(a.body, created.Token) {
		t.Fatalf("list entry %v (the token must never be shown again)", list[0])
	}
	if a := do(t, c, "GET", "/api/v1/links", "eve", ""); a.status != 200 || strings.TrimSpace(a.body) != "[]" {
		t.Fatalf("eve's list: %d %s", a.status, a.body)
	}
	if a := do(t, c, "GET", "/api/v1/links/"+created.ID, "eve", ""); a.status != 404 {
		t.Fatalf("eve reads bob's link: %d", a.status)
	}
	if a := do(t, c, "POST", "/api/v1/links/"+created.ID+"/disable", "eve", ""); a.status != 404 {
		t.Fatalf("eve disables bob's link: %d", a.status)
	}

	a = do(t, c, "POST", "/api/v1/links/"+created.ID+"/disable", "bob", "")
	if a.status != 200 || !strings.Contains(a.body, `"enabled":false`) {
		t.Fatalf("disable: %d %s", a.status, a.body)
	}
	if d := e.svc.Decide(created.ID, "cam1", "live", t0, nil); d.Allowed {
		t.Fatal("disabled through the API but still allowed")
	}
	a = do(t, c, "POST", "/api/v1/links/"+created.ID+"/enable", "root", "")
	if a.status != 200 || !strings.Contains(a.body, `"enabled":true`) {
		t.Fatalf("enable by root: %d %s", a.status, a.body)
	}
	a = do(t, c, "GET", "/api/v1/links/"+created.ID, "bob", "")
	if a.status != 200 || !strings.Contains(a.body, `"state":"active"`) || strings.Contains(a.body, "token") {
		t.Fatalf("get: %d %s", a.status, a.body)
	}
	if a := do(t, c, "DELETE", "/api/v1/links/"+created.ID, "bob", ""); a.status != 200 {
		t.Fatalf("delete: %d %s", a.status, a.body)
	}
	if a := do(t, c, "GET", "/api/v1/links/"+created.ID, "bob", ""); a.status != 404 {
		t.Fatalf("get after delete: %d", a.status)
	}
	if a := do(t, c, "POST", "/api/v1/links/"+created.ID+"/enable", "bob", ""); a.status != 404 {
		t.Fatalf("enable after delete: %d", a.status)
	}
	if a := do(t, c, "PUT", "/api/v1/links", "bob", ""); a.status != 405 {
		t.Fatalf("PUT: %d", a.status)
	}
}

func TestAPIStateOfWindow(t *testing.T) {
	e := newEnv(t)
	c := serve(t, e.svc)
	e.create(t, t0.Add(time.Hour), t0.Add(2*time.Hour))
	e.create(t, t0, t0.Add(time.Minute))
	e.clock.Set(t0.Add(30 * time.Minute))
	a := do(t, c, "GET", "/api/v1/links", "root", "")
	if !strings.Contains(a.body, `"state":"not_yet_active"`) || !strings.Contains(a.body, `"state":"expired"`) {
		t.Fatalf("states: %s", a.body)
	}
}

var scriptRe = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

func checkPageHeaders(t *testing.T, a answer) {
	t.Helper()
	want := map[string]string{
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	}
	for k, v := range want {
		if a.header[k] != v {
			t.Errorf("%s = %q, want %q", k, a.header[k], v)
		}
	}
	csp := a.header["Content-Security-Policy"]
	for _, d := range []string{"default-src 'none'", "media-src 'self' blob:", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows any inline code", csp)
	}
	// The inline script runs only if the CSP names its hash.
	if m := scriptRe.FindStringSubmatch(a.body); m != nil {
		sum := sha256.Sum256([]byte(m[1]))
		if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, h) {
			t.Errorf("CSP %q does not allow the page's script (%s)", csp, h)
		}
	} else {
		t.Error("page has no inline script")
	}
}

func TestViewerPagePlays(t *testing.T) {
	e := newEnv(t)
	c := serve(t, e.svc)
	l := e.create(t, t0, t0.Add(2*time.Hour))
	a := do(t, c, "GET", "/s/"+l.Token, "", "")
	if a.status != 200 || !strings.HasPrefix(a.header["Content-Type"], "text/html") {
		t.Fatalf("page: %d %v", a.status, a.header)
	}
	checkPageHeaders(t, a)
	for _, want := range []string{
		`<html lang="en">`, `<main data-camera="cam1"`, `<h1 id="camera-name">Front door</h1>`,
		`<video id="video" controls muted autoplay playsinline aria-labelledby="camera-name"`,
		`aria-live="polite"`, `datetime="2026-05-01T10:00:00Z"`, `datetime="2026-05-01T12:00:00Z"`,
		`/whep/`, `/s/assets/hls.min.js`, `window.camgatePlayback`,
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(e.logs.String(), l.Token) {
		t.Fatal("the token reached the logs")
	}
	if !strings.Contains(e.logs.String(), links.Fingerprint(l.Token)) {
		t.Fatalf("the page's log line lacks the token fingerprint: %s", e.logs.String())
	}
}

func TestViewerPageRefusals(t *testing.T) {
	e := newEnv(t)
	e.world.allowShare("bob", "cam2", true)
	c := serve(t, e.svc)
	mk := func(from, until time.Time) links.Created { return e.create(t, from, until) }
	notYet := mk(t0.Add(time.Hour), t0.Add(2*time.Hour))
	expired := mk(t0.Add(-time.Hour+time.Second), t0.Add(time.Minute))
	disabled := mk(t0, t0.Add(time.Hour))
	deleted := mk(t0, t0.Add(time.Hour))
	bobs, err := e.svc.Create(links.Creator{Subject: "bob"}, links.CreateRequest{Device: "cam2", NotAfter: tp(t0.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Disable(disabled.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(deleted.ID); err != nil {
		t.Fatal(err)
	}
	e.world.allowShare("bob", "cam2", false)
	e.clock.Set(t0.Add(10 * time.Minute))
	parts := strings.Split(disabled.Token, ".")
	cases := []struct {
		name, token string
		status      int
		text        string
	}{
		{"not yet active", notYet.Token, 403, "not active yet"},
		{"expired", expired.Token, 410, "has expired"},
		{"disabled", disabled.Token, 403, "has been disabled"},
		{"deleted", deleted.Token, 410, "has been removed"},
		{"creator lost share", bobs.Token, 403, "no longer gives access"},
		{"invalid", "garbage", 404, "not valid"},
		{"tampered", parts[0] + "." + parts[1] + "x." + parts[2], 404, "not valid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, c, "GET", "/s/"+tc.token, "", "")
			if a.status != tc.status || !strings.Contains(a.body, tc.text) {
				t.Fatalf("%d, want %d with %q:\n%s", a.status, tc.status, tc.text, a.body)
			}
			if strings.Contains(a.body, "<video") || strings.Contains(a.body, "goroutine") {
				t.Fatal("a refused link shows a player or a stack trace")
			}
			checkPageHeaders(t, a)
		})
	}
	if logs := e.logs.String(); strings.Contains(logs, notYet.Token) || strings.Contains(logs, disabled.Token) {
		t.Fatal("a token reached the logs")
	}
}

func TestAssetsAndJWKSHandlers(t *testing.T) {
	e := newEnv(t)
	c := serve(t, e.svc)
	a := do(t, c, "GET", "/s/assets/hls.min.js", "", "")
	if a.status != 200 || !strings.HasPrefix(a.header["Content-Type"], "text/javascript") ||
		a.header["X-Content-Type-Options"] != "nosniff" || !strings.Contains(a.body, "Hls") || len(a.body) < 100000 {
		t.Fatalf("hls.min.js: %d %v (%d bytes)", a.status, a.header, len(a.body))
	}
	if a := do(t, c, "GET", "/s/assets/LICENSE", "", ""); a.status != 200 || !strings.Contains(a.body, "Apache License") {
		t.Fatalf("LICENSE: %d", a.status)
	}
	if a := do(t, c, "GET", "/s/assets/../service.go", "", ""); a.status == 200 {
		t.Fatal("served a file outside the assets")
	}
	a = do(t, c, "GET", "/.well-known/jwks.json", "", "")
	if a.status != 200 || len(parseJWKS(t, []byte(a.body)).Keys) != 1 {
		t.Fatalf("jwks: %d %s", a.status, a.body)
	}
}
