package source

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzNew feeds arbitrary source URLs (they come from config and the API):
// New must not panic, and neither its error nor the logged URL may carry
// the password.
func FuzzNew(f *testing.F) {
	for _, s := range []string{
		"rtsp://user:secret@cam.local:554/live?token=abc",
		"rtsps://a:b@[::1]:322/s",
		"file:///etc/passwd",
		"http://u:secretpw@h/",
		"rtsp://h:99999/",
		"rtsp://u:secretpw@[::1/x",
		"%zz",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if raw == DemoURL {
			return // parsing the clip is covered elsewhere and slow to fuzz
		}
		src, err := New(raw, Options{})
		if (src == nil) == (err == nil) {
			t.Fatalf("New(%q) = %v, %v: want exactly one of source and error", raw, src, err)
		}
		u, perr := url.Parse(raw)
		if perr != nil || u.User == nil {
			return
		}
		pw, ok := u.User.Password()
		rest := *u
		rest.User = nil
		if !ok || len(pw) < 4 || strings.Contains(rest.String(), pw) || strings.Contains(raw[:strings.Index(raw, ":")+1], pw) {
			return
		}
		if err != nil && strings.Contains(err.Error(), pw) {
			t.Errorf("error leaks the password %q: %v", pw, err)
		}
		if r, ok := src.(*RTSP); ok && strings.Contains(r.logURL, pw) {
			t.Errorf("log URL leaks the password %q: %s", pw, r.logURL)
		}
	})
}
