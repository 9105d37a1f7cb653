package archive

import (
	"encoding/json"
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
