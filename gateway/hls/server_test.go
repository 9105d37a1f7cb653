package hls

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/internal/mediatest"
)

type response struct {
	status int
	header http.Header
	body   string
}

// get fetches url with an optional session cookie.
func get(t *testing.T, url, cookie string) response {
	t.Helper()
	if cookie == "" {
		return fetch(t, http.MethodGet, url, "")
	}
	return fetch(t, http.MethodGet, url, "", "Cookie", cookieName+"="+cookie)
}

var uriAttr = regexp.MustCompile(`URI="([^"]+)"`)

// uris lists every URI of a playlist: plain lines and URI="…" attributes.
func uris(playlist string) []string {
	var out []string
	for _, line := range strings.Split(playlist, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			out = append(out, line)
			continue
		}
		for _, m := range uriAttr.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// exchange opens index.m3u8 with a token and returns the session id and
// the playlist.
func (h *harness) exchange(t *testing.T, camera, token string) (string, string) {
	t.Helper()
	r := get(t, h.base+"/hls/"+camera+"/index.m3u8?token="+token, "")
	if r.status != http.StatusOK {
		t.Fatalf("index.m3u8: %d %s", r.status, r.body)
	}
	m := regexp.MustCompile(`camgate_hls=([0-9a-f]+)`).FindStringSubmatch(r.header.Get("Set-Cookie"))
	if m == nil {
		t.Fatalf("no session cookie: %v", r.header)
	}
	return m[1], r.body
}

// lastSegment returns the URI of the newest full segment of a media playlist.
func (h *harness) lastSegment(t *testing.T, camera, playlist, sid string) string {
	t.Helper()
	r := get(t, h.base+"/hls/"+camera+"/"+playlist+"?session="+sid, "")
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d %s", playlist, r.status, r.body)
	}
	var seg string
	for _, u := range uris(r.body) {
		if strings.Contains(u, "_seg") {
			seg = u
		}
	}
	if seg == "" {
		t.Fatalf("no segment in %s", r.body)
	}
	return h.base + "/hls/" + camera + "/" + seg
}

func TestFFprobePlaysTracksBySound(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe is required (apt-get install ffmpeg)")
	}
	h := newHarness(t, nil)
	cases := []struct {
		token, want, variant string
	}{
		{"alice", "h264,opus", "full"},
		{"bob", "h264", "video"},
	}
	for _, c := range cases {
		t.Run(c.token, func(t *testing.T) {
			codecs, stderr, err := mediatest.Probe(t, h.base+"/hls/cam1/index.m3u8?token="+c.token)
			if err != nil {
				t.Fatalf("ffprobe: %v: %s", err, stderr)
			}
			if got := strings.Join(codecs, ","); got != c.want {
				t.Fatalf("tracks %q, want %q", got, c.want)
			}
			found := false
			for _, s := range h.reg.List() {
				if s.Subject == c.token {
					found = true
					if s.Protocol != session.ProtocolHLS || s.Camera != "cam1" || s.Variant != c.variant {
						t.Fatalf("registered session %+v", s)
					}
				}
			}
			if !found {
				t.Fatalf("no registered session for %s in %+v", c.token, h.reg.List())
			}
		})
	}
}

// TestVideoOnlyHasNoAudioRendition looks at what a player is told.
func TestVideoOnlyHasNoAudioRendition(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	_, full := h.exchange(t, "cam1", "alice")
	_, video := h.exchange(t, "cam1", "bob")
	if !strings.Contains(full, "TYPE=AUDIO") || !strings.Contains(full, "opus") {
		t.Fatalf("full variant without audio rendition:\n%s", full)
	}
	if strings.Contains(video, "TYPE=AUDIO") || strings.Contains(video, "opus") {
		t.Fatalf("video variant lists audio:\n%s", video)
	}
}

// TestPlaylistURLsCarryTheSession: every URL a player follows carries the
// session id and never the token; the token exchange sets the cookie.
func TestPlaylistURLsCarryTheSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	r := get(t, h.base+"/hls/cam1/index.m3u8?token=alice", "")
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	cookie := r.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "path=/hls/cam1/", "SameSite=Lax"} {
		if !strings.Contains(cookie, want) {
			t.Fatalf("Set-Cookie %q lacks %s", cookie, want)
		}
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("index Cache-Control %q", cc)
	}
	sid := regexp.MustCompile(`camgate_hls=([0-9a-f]{32});`).FindStringSubmatch(cookie)
	if sid == nil {
		t.Fatalf("session id in %q is not 128 bits of hex", cookie)
	}
	media := get(t, h.base+"/hls/cam1/video1_stream.m3u8?session="+sid[1], "")
	if media.status != http.StatusOK {
		t.Fatalf("%d %s", media.status, media.body)
	}
	if cc := media.header.Get("Cache-Control"); strings.Contains(cc, "public") {
		t.Fatalf("media playlist Cache-Control %q", cc)
	}
	all := append(uris(r.body), uris(media.body)...)
	if len(all) < 4 {
		t.Fatalf("few URIs: %v", all)
	}
	for _, u := range all {
		if u == "gap.mp4" {
			continue // LL-HLS gap placeholders are never fetched by conforming players
		}
		if !strings.HasSuffix(u, "?session="+sid[1]) || strings.Contains(u, "token") {
			t.Fatalf("URI %q does not carry exactly the session", u)
		}
	}
}

// TestSessionByCookieOrQuery: either carrier is enough.
func TestSessionByCookieOrQuery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sid, _ := h.exchange(t, "cam1", "bob")
	byQuery := get(t, h.base+"/hls/cam1/video1_stream.m3u8?session="+sid, "")
	byCookie := get(t, h.base+"/hls/cam1/video1_stream.m3u8", sid)
	for name, r := range map[string]response{"query": byQuery, "cookie": byCookie} {
		if r.status != http.StatusOK || !strings.Contains(r.body, "#EXTINF") {
			t.Fatalf("by %s: %d %s", name, r.status, r.body)
		}
	}
	seg := h.lastSegment(t, "cam1", "video1_stream.m3u8", sid)
	r := get(t, strings.Split(seg, "?")[0], sid)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "video/mp4" || len(r.body) < 1000 {
		t.Fatalf("segment by cookie: %d %v %d bytes", r.status, r.header, len(r.body))
	}
}

type errorCase struct {
	name   string
	path   string
	cookie string
	want   int
}

func TestErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sid, _ := h.exchange(t, "cam1", "alice")
	unknown := strings.Repeat("0", 32)
	cases := []errorCase{
		{"no token", "/hls/cam1/index.m3u8", "", 401},
		{"bad token", "/hls/cam1/index.m3u8?token=mallory", "", 401},
		{"no live", "/hls/cam1/index.m3u8?token=eve", "", 403},
		{"unknown camera", "/hls/nope/index.m3u8?token=alice", "", 404},
		{"bad camera name", "/hls/.hidden/index.m3u8?token=alice", "", 404},
		{"unknown file", "/hls/cam1/evil.txt?session=" + sid, "", 404},
		{"unknown mp4", "/hls/cam1/abc_video1_seg999999.mp4?session=" + sid, "", 404},
		{"file name with a slash", "/hls/cam1/x%2f..%2fy_seg1.mp4?session=" + sid, "", 404},
		{"segment without session", "/hls/cam1/video1_stream.m3u8", "", 401},
		{"token on a media playlist", "/hls/cam1/video1_stream.m3u8?token=alice", "", 401},
		{"unknown session", "/hls/cam1/video1_stream.m3u8?session=" + unknown, "", 401},
		{"short session", "/hls/cam1/video1_stream.m3u8?session=abc", "", 400},
		{"upper-case session", "/hls/cam1/video1_stream.m3u8?session=" + strings.ToUpper(sid), "", 400},
		{"non-hex session", "/hls/cam1/video1_stream.m3u8?session=" + strings.Repeat("z", 32), "", 400},
		{"session twice", "/hls/cam1/video1_stream.m3u8?session=" + sid + "&session=" + sid, "", 400},
		{"malformed cookie", "/hls/cam1/video1_stream.m3u8", "x;y", 400},
		{"empty token", "/hls/cam1/index.m3u8?token=", "", 400},
		{"token twice", "/hls/cam1/index.m3u8?token=alice&token=bob", "", 400},
		{"msn not a number", "/hls/cam1/video1_stream.m3u8?_HLS_msn=abc&session=" + sid, "", 400},
		{"negative part", "/hls/cam1/video1_stream.m3u8?_HLS_msn=1&_HLS_part=-1&session=" + sid, "", 400},
		{"part without msn", "/hls/cam1/video1_stream.m3u8?_HLS_part=1&session=" + sid, "", 400},
		{"bad skip", "/hls/cam1/video1_stream.m3u8?_HLS_skip=maybe&session=" + sid, "", 400},
		{"msn far ahead", "/hls/cam1/video1_stream.m3u8?_HLS_msn=99999&session=" + sid, "", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := get(t, h.base+c.path, c.cookie)
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %s", r.status, c.want, r.body)
			}
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error == "" {
				t.Fatalf("body %q is not a JSON error", r.body)
			}
			if r.header.Get("Content-Type") != "application/json" || r.header.Get("Set-Cookie") != "" {
				t.Fatalf("headers %v", r.header)
			}
		})
	}
	t.Run("method", func(t *testing.T) {
		resp, err := http.Post(h.base+"/hls/cam1/index.m3u8?token=alice", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
	})
}

// TestSessionIsBoundToItsCamera: a session id admitted on cam1 reads
// nothing of cam2, even cam2's own file names.
func TestSessionIsBoundToItsCamera(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sid1, _ := h.exchange(t, "cam1", "alice")
	sid2, _ := h.exchange(t, "cam2", "alice")
	seg2 := h.lastSegment(t, "cam2", "video1_stream.m3u8", sid2)
	stolen := strings.Replace(seg2, "session="+sid2, "session="+sid1, 1)
	for _, u := range []string{
		h.base + "/hls/cam2/index.m3u8?session=" + sid1,
		h.base + "/hls/cam2/video1_stream.m3u8?session=" + sid1,
		stolen,
	} {
		if r := get(t, u, ""); r.status != http.StatusForbidden {
			t.Fatalf("%s: %d %s", u, r.status, r.body)
		}
	}
	if r := get(t, h.base+"/hls/cam2/video1_stream.m3u8", sid1); r.status != http.StatusForbidden {
		t.Fatalf("by cookie: %d %s", r.status, r.body)
	}
	if r := get(t, seg2, ""); r.status != http.StatusOK {
		t.Fatalf("own segment: %d", r.status)
	}
}
