// Package browsertest drives headless Chromium through chromedriver (the
// W3C WebDriver HTTP protocol) for end-to-end tests of pages camgate serves:
// the share-link viewer page, WHEP players. Tests fail, not skip, when the
// browser is missing: scripts/test installs it. Start and the methods taking
// a context serve callers without a testing.TB (the bench).
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// ErrMissing is returned by Start when chromium or chromedriver is not
// installed.
var ErrMissing = errors.New("apt-get install -y chromium chromium-driver (or run scripts/test)")

// Session is one browser window.
type Session struct {
	base   string // chromedriver URL
	id     string
	cancel context.CancelFunc // stops chromedriver
	driver *exec.Cmd
}

// New starts chromedriver and a headless Chromium session allowed to
// autoplay and to use loopback ICE candidates; both stop with the test.
func New(t testing.TB) *Session {
	t.Helper()
	s, err := Start(context.Background())
	if errors.Is(err, ErrMissing) {
		t.Fatalf("%v is required for browser tests", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start is New for callers without a testing.TB: chromedriver and one
// headless Chromium session, until Close. args are added to Chromium's
// command line; ctx bounds the start only.
func Start(ctx context.Context, args ...string) (*Session, error) {
	for _, p := range []string{ChromiumPath, ChromedriverPath} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s: %w", p, ErrMissing)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(dctx, ChromedriverPath, "--port="+strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	s := &Session{base: fmt.Sprintf("http://127.0.0.1:%d", port), cancel: cancel, driver: cmd}
	if err := s.waitDriver(ctx); err != nil {
		s.Close()
		return nil, err
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": ChromiumPath,
			"args": append([]string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection",
				// Several sessions run side by side: none may be throttled
				// as a background window.
				"--disable-background-timer-throttling", "--disable-renderer-backgrounding",
				"--disable-backgrounding-occluded-windows"}, args...),
		},
	}}}
	var res struct {
		SessionID string `json:"sessionId"`
	}
	if err := s.do(ctx, "POST", "/session", caps, &res); err != nil {
		s.Close()
		return nil, err
	}
	if res.SessionID == "" {
		s.Close()
		return nil, errors.New("chromedriver returned no session")
	}
	s.id = res.SessionID
	return s, nil
}

func (s *Session) waitDriver(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(s.base + "/status")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("chromedriver did not start: %v", errors.Join(err, ctx.Err()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close ends the browser session and stops chromedriver.
func (s *Session) Close() {
	if s.id != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.do(ctx, "DELETE", "/session/"+s.id, nil, nil)
		cancel()
		s.id = ""
	}
	if s.cancel != nil {
		s.cancel()
		_ = s.driver.Wait()
		s.cancel = nil
	}
}

// Navigate loads url.
func (s *Session) Navigate(t testing.TB, url string) {
	t.Helper()
	if err := s.Visit(context.Background(), url); err != nil {
		t.Fatal(err)
	}
}

// Eval runs script (a function body that returns a value) in the page and
// decodes the result into out.
func (s *Session) Eval(t testing.TB, script string, out any) {
	t.Helper()
	if err := s.Execute(context.Background(), script, out); err != nil {
		t.Fatal(err)
	}
}

// Visit is Navigate returning its error.
func (s *Session) Visit(ctx context.Context, url string) error {
	return s.do(ctx, "POST", "/session/"+s.id+"/url", map[string]any{"url": url}, nil)
}

// Execute is Eval returning its error.
func (s *Session) Execute(ctx context.Context, script string, out any) error {
	return s.do(ctx, "POST", "/session/"+s.id+"/execute/sync", map[string]any{"script": script, "args": []any{}}, out)
}

// do runs one WebDriver command (at most 30 s) and decodes its "value"
// into out.
func (s *Session) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("webdriver %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &env); err != nil || res.StatusCode != http.StatusOK {
		return fmt.Errorf("webdriver %s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(env.Value, out); err != nil {
			return fmt.Errorf("webdriver %s %s: value %s: %w", method, path, env.Value, err)
		}
	}
	return nil
}
