package rtsp

import (
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

func TestCameraFrom(t *testing.T) {
	cases := map[string]string{
		"/cam1": "cam1", "cam1": "cam1", "/": "", "": "", "/a/b": "", "/../etc": "", "/.hidden": "", `/a\b`: "",
	}
	for in, want := range cases {
		if got := cameraFrom(in); got != want {
			t.Errorf("cameraFrom(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRequestCredentials feeds arbitrary paths, queries and Authorization
// headers to the parsing the server does before any decision: nothing may
// panic, and a camera id never contains a path separator.
func FuzzRequestCredentials(f *testing.F) {
	f.Add("/cam1", "token=abc", "Basic dXNlcjpwYXNz")
	f.Add("/cam1/", "token=%zz", "Digest username=\"x\"")
	f.Add("/../x", "a=b&token=", "Basic !!!")
	f.Add("/cam1", "", "Basic Y2dhYmNkZWZnaDpBQkNERUZHSEpLTE1OUFFSU1RVVg==")
	f.Add("/cam1", "", `Digest username="cgabcdefgh", realm="camgate", nonce="00", uri="rtsp://127.0.0.1:8554/cam1/trackID=0", response="x"`)
	f.Fuzz(func(t *testing.T, path, query, authz string) {
		cam := cameraFrom(path)
		if strings.ContainsAny(cam, "/\\") || strings.HasPrefix(cam, ".") {
			t.Fatalf("camera %q from %q", cam, path)
		}
		req := &base.Request{Header: base.Header{"Authorization": base.HeaderValue{authz}}}
		c := credentialFrom(req, query)
		if c.basicUser != "" && (c.token != "" || c.digest != nil || strings.Contains(c.basicPass, ".")) {
			t.Fatalf("a stream credential and a token at once: %+v", c)
		}
		if c.digest != nil {
			u, err := base.ParseURL("rtsp://127.0.0.1:8554" + "/" + cam)
			if err == nil {
				_ = digestURIMatches(u, c.digest.URI, true)
			}
		}
	})
}
