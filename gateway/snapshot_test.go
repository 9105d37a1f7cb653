package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// snapshotGet fetches a camera's snapshot with tok in the query (or as a
// bearer token when bearer is set).
func snapshotGet(t *testing.T, n *node, camera, tok, query string, bearer bool) (int, http.Header, []byte) {
	t.Helper()
	url := n.api + "/cameras/" + camera + "/snapshot.jpg?" + query
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if tok != "" {
		req.URL.RawQuery += "&token=" + tok
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

func wantJPEG(t *testing.T, code int, hdr http.Header, body []byte, w, h int) {
	t.Helper()
	if code != 200 || hdr.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("%d %s: %.200s", code, hdr.Get("Content-Type"), body)
	}
	img, err := jpeg.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not a JPEG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("%dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	if !strings.Contains(hdr.Get("Cache-Control"), "no-store") {
		t.Fatalf("Cache-Control %q: a per-viewer answer must not be stored", hdr.Get("Cache-Control"))
	}
}

// The demo camera gives a snapshot: alice (live) fetches snapshot.jpg with
// her token in the query and as a bearer token and gets a 640×360 JPEG of
// the clip; a share link with `live` does too.
func TestDemoCameraSnapshot(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	alice := viewerToken(t, "alice")
	code, hdr, body := snapshotGet(t, n, "cam1", alice, "", false)
	wantJPEG(t, code, hdr, body, 640, 360)
	if hdr.Get("X-Snapshot-Source") != "keyframe" {
		t.Fatalf("source %q", hdr.Get("X-Snapshot-Source"))
	}
	code, hdr, body = snapshotGet(t, n, "cam1", alice, "", true)
	wantJPEG(t, code, hdr, body, 640, 360)

	out := mustCall(t, n, "POST", "/links", fmt.Sprintf(`{"device":"cam1","actions":["live"],"not_after":%q}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), 201)
	code, hdr, body = snapshotGet(t, n, "cam1", out["token"].(string), "", false)
	wantJPEG(t, code, hdr, body, 640, 360)
	if n.g.Sessions().Len() != 0 {
		t.Fatal("a snapshot must not leave a session")
	}
}

// A snapshot needs `live` (archive alone is not enough for the live
// picture), a well-formed ?at=, and GET.
func TestSnapshotRefusals(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user","name":"Bob"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-bob", `{"subject":"bob","device":"cam1","actions":["archive"]}`, 200)
	bob := viewerToken(t, "bob")
	if code, _, body := snapshotGet(t, n, "cam1", bob, "", false); code != 403 {
		t.Fatalf("archive only, live snapshot: %d %s", code, body)
	}
	if code, _, body := snapshotGet(t, n, "cam1", bob, "at=yesterday", false); code != 400 || !strings.Contains(string(body), "at:") {
		t.Fatalf("bad at: %d %s", code, body)
	}
	if code, _, body := snapshotGet(t, n, "cam1", testAdminKey, "", true); code != 401 {
		t.Fatalf("an admin key is not a viewer credential: %d %s", code, body)
	}
	if code, hdr, _ := httpStatus(t, "POST", n.api+"/cameras/cam1/snapshot.jpg?token="+bob, "", ""); code != 405 || hdr.Get("Allow") == "" {
		t.Fatalf("POST: %d", code)
	}
}

// Without ffmpeg the gateway still runs, and a snapshot answers 503 with a
// JSON message that says what is missing.
func TestSnapshotWithoutFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	code, hdr, body := snapshotGet(t, n, "cam1", viewerToken(t, "alice"), "", false)
	var msg struct{ Error string }
	if err := json.Unmarshal(body, &msg); err != nil || code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(msg.Error, "ffmpeg") {
		t.Fatalf("%d %q %s", code, hdr.Get("Retry-After"), body)
	}
}
