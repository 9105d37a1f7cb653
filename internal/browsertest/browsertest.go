// Package browsertest drives headless Chromium through chromedriver (the
// W3C WebDriver HTTP protocol) for end-to-end tests of pages camgate serves:
// the share-link viewer page, WHEP players. Tests fail, not skip, when the
// browser is missing: scripts/test installs it.
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Paths of Debian's chromium and chromium-driver packages.
const (
	ChromiumPath     = "/usr/bin/chromium"
	ChromedriverPath = "/usr/bin/chromedriver"
)

// Session is one browser window.
type Session struct {
	base string // chromedriver URL
	id   string
}

// New starts chromedriver and a headless Chromium session allowed to
// autoplay and to use loopback ICE candidates; both stop with the test.
func New(t testing.TB) *Session {
	t.Helper()
	for _, p := range []string{ChromiumPath, ChromedriverPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is required for browser tests: apt-get install -y chromium chromium-driver (or run scripts/test)", p)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, ChromedriverPath, "--port="+strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	s := &Session{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(s.base + "/status")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": ChromiumPath,
			"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection"},
		},
	}}}
	var res struct {
		SessionID string `json:"sessionId"`
	}
	s.call(t, "POST", "/session", caps, &res)
	if res.SessionID == "" {
		t.Fatal("chromedriver returned no session")
	}
	s.id = res.SessionID
	t.Cleanup(func() { s.call(t, "DELETE", "/session/"+s.id, nil, nil) })
	return s
}

// Navigate loads url.
func (s *Session) Navigate(t testing.TB, url string) {
	t.Helper()
	s.call(t, "POST", "/session/"+s.id+"/url", map[string]any{"url": url}, nil)
}

// Eval runs script (a function body that returns a value) in the page and
// decodes the result into out.
func (s *Session) Eval(t testing.TB, script string, out any) {
	t.Helper()
	s.call(t, "POST", "/session/"+s.id+"/execute/sync", map[string]any{"script": script, "args": []any{}}, out)
}

// call does one WebDriver command and decodes its "value" into out.
func (s *Session) call(t testing.TB, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &env); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("webdriver %s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(env.Value, out); err != nil {
			t.Fatalf("webdriver %s %s: value %s: %v", method, path, env.Value, err)
		}
	}
}
