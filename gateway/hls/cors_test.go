package hls

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// fetch sends method to url as a browser on origin would (Origin header,
// unless origin is empty, plus extra headers) and returns the response.
func fetch(t *testing.T, method, url, origin string, extra ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

var sessionCookie = regexp.MustCompile(`camgate_hls=([0-9a-f]+)`)

// TestCORS: a page on another origin can read every response a player gets
// (playlists, init, segments from the muxer and from the file cache, and
// errors, so it can tell a 403 from a network failure), and its preflight is
// answered without credentials.
func TestCORS(t *testing.T) {
	t.Parallel()
	const page = "http://player.example:8000"
	cases := []struct {
		name, allow, want string
	}{
		{"default", "", "*"},
		{"configured origin", page, page},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(s *Server) { s.AllowOrigin = c.allow })
			check := func(what string, r response, status int) {
				t.Helper()
				if r.status != status {
					t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
				}
				if got := r.header.Get("Access-Control-Allow-Origin"); got != c.want {
					t.Fatalf("%s: Access-Control-Allow-Origin %q, want %q", what, got, c.want)
				}
				if got := r.header.Get("Access-Control-Allow-Credentials"); got != "" {
					t.Fatalf("%s: Access-Control-Allow-Credentials %q", what, got)
				}
			}

			index := fetch(t, http.MethodGet, h.base+"/hls/cam1/index.m3u8?token=alice", page)
			check("index.m3u8", index, http.StatusOK)
			m := sessionCookie.FindStringSubmatch(index.header.Get("Set-Cookie"))
			if m == nil {
				t.Fatalf("no session cookie: %v", index.header)
			}
			sid := m[1]
			media := fetch(t, http.MethodGet, h.base+"/hls/cam1/video1_stream.m3u8?session="+sid, page)
			check("media playlist", media, http.StatusOK)
			for _, u := range uris(media.body) {
				if strings.Contains(u, "_init") {
					check("init", fetch(t, http.MethodGet, h.base+"/hls/cam1/"+u, page), http.StatusOK)
				}
			}
			seg := h.lastSegment(t, "cam1", "video1_stream.m3u8", sid)
			check("segment", fetch(t, http.MethodGet, seg, page), http.StatusOK)
			check("cached segment", fetch(t, http.MethodGet, seg, page), http.StatusOK)
			check("segment HEAD", fetch(t, http.MethodHead, seg, page), http.StatusOK)

			check("401", fetch(t, http.MethodGet, h.base+"/hls/cam1/index.m3u8?token=mallory", page), http.StatusUnauthorized)
			check("403", fetch(t, http.MethodGet, h.base+"/hls/cam1/index.m3u8?token=eve", page), http.StatusForbidden)
			check("404", fetch(t, http.MethodGet, h.base+"/hls/nope/index.m3u8?token=alice", page), http.StatusNotFound)
			check("404 file", fetch(t, http.MethodGet, h.base+"/hls/cam1/evil.txt?session="+sid, page), http.StatusNotFound)
			post := fetch(t, http.MethodPost, h.base+"/hls/cam1/index.m3u8?token=alice", page)
			check("405", post, http.StatusMethodNotAllowed)
			if got := post.header.Get("Allow"); got != allowedMethods {
				t.Fatalf("405 Allow %q", got)
			}

			// A preflight carries no credentials and needs none.
			for _, path := range []string{"/hls/cam1/index.m3u8?token=alice", "/hls/cam1/video1_stream.m3u8"} {
				pre := fetch(t, http.MethodOptions, h.base+path, page,
					"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "range")
				check("preflight "+path, pre, http.StatusNoContent)
				for k, want := range map[string]string{
					"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
					"Access-Control-Allow-Headers": "Authorization, Range",
				} {
					if got := pre.header.Get(k); got != want {
						t.Fatalf("preflight %s %q, want %q", k, got, want)
					}
				}
				if pre.body != "" || pre.header.Get("Set-Cookie") != "" {
					t.Fatalf("preflight body %q, headers %v", pre.body, pre.header)
				}
			}
		})
	}
}
