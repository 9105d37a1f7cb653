package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/poll"
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

// fakeONVIFCamera answers just enough ONVIF for a snapshot (GetServices,
// GetProfiles, GetSnapshotUri) and serves a w×h JPEG at /snap.jpg behind
// Basic auth; fault makes every SOAP call fail.
func fakeONVIFCamera(t *testing.T, w, h int, fault bool) *httptest.Server {
	t.Helper()
	var pic bytes.Buffer
	if err := jpeg.Encode(&pic, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/snap.jpg" {
			if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
				rw.Header().Set("WWW-Authenticate", `Basic realm="cam"`)
				rw.WriteHeader(http.StatusUnauthorized)
				return
			}
			rw.Header().Set("Content-Type", "image/jpeg")
			_, _ = rw.Write(pic.Bytes())
			return
		}
		b, _ := io.ReadAll(r.Body)
		body := ""
		switch s := string(b); {
		case fault:
		case strings.Contains(s, "GetServices"):
			body = `<tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace><tds:XAddr>` + srv.URL + `/onvif/media</tds:XAddr></tds:Service></tds:GetServicesResponse>`
		case strings.Contains(s, "GetProfiles"):
			body = `<trt:GetProfilesResponse><trt:Profiles token="main"/></trt:GetProfilesResponse>`
		case strings.Contains(s, "GetSnapshotUri"):
			body = `<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>/snap.jpg</tt:Uri></trt:MediaUri></trt:GetSnapshotUriResponse>`
		}
		rw.Header().Set("Content-Type", "application/soap+xml")
		if body == "" {
			rw.WriteHeader(http.StatusInternalServerError)
			body = `<s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang="en">fake camera</s:Text></s:Reason></s:Fault>`
		}
		fmt.Fprintf(rw, `<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" `+
			`xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body>%s</s:Body></s:Envelope>`, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A camera with ONVIF configured gives its own JPEG; one whose ONVIF
// fails still gives a snapshot, decoded from its stream.
func TestSnapshotFromONVIF(t *testing.T) {
	n := startNode(t, t.TempDir())
	good, broken := fakeONVIFCamera(t, 32, 24, false), fakeONVIFCamera(t, 32, 24, true)
	for id, url := range map[string]string{"onvif": good.URL, "broken": broken.URL} {
		mustCall(t, n, "PUT", "/devices/"+id, `{"site":"hq","kind":"camera","source":"builtin:demo","ptz":{"onvif_url":"`+url+`/onvif/device_service","username":"u","password":"p"}}`, 200)
	}
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","site":"hq","actions":["live"]}`, 200)
	alice := viewerToken(t, "alice")
	code, hdr, body := snapshotGet(t, n, "onvif", alice, "", false)
	wantJPEG(t, code, hdr, body, 32, 24)
	if hdr.Get("X-Snapshot-Source") != "onvif" {
		t.Fatalf("source %q", hdr.Get("X-Snapshot-Source"))
	}
	code, hdr, body = snapshotGet(t, n, "broken", alice, "", false)
	wantJPEG(t, code, hdr, body, 640, 360)
	if hdr.Get("X-Snapshot-Source") != "keyframe" {
		t.Fatalf("source %q", hdr.Get("X-Snapshot-Source"))
	}
}

// A snapshot from the recording: ?at= inside a recorded segment gives the
// JPEG of the keyframe at or before it, decided with `archive` at the
// keyframe's own recording time, so a link whose footage window starts
// between that keyframe and at is refused like the segment would be.
func TestSnapshotFromRecording(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) {
		c.Archive.SegmentDuration = config.Duration(2 * time.Second)
		c.Cameras[0].Record = true
	})
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user","name":"Bob"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["archive"]}`, 200)
	mustCall(t, n, "PUT", "/grants/g-bob", `{"subject":"bob","device":"cam1","actions":["live"]}`, 200)
	poll.Within(t, 30*time.Second, "2 segments indexed", func() bool {
		return len(n.g.archive.Segments("cam1", time.Time{}, time.Now().Add(time.Hour))) >= 2
	})
	seg := n.g.archive.Segments("cam1", time.Time{}, time.Now().Add(time.Hour))[0]
	at := seg.Start.Add(1500 * time.Millisecond)
	q := "at=" + at.UTC().Format(time.RFC3339Nano)
	alice := viewerToken(t, "alice")
	code, hdr, body := snapshotGet(t, n, "cam1", alice, q, false)
	wantJPEG(t, code, hdr, body, 640, 360)
	taken, err := time.Parse(time.RFC3339Nano, hdr.Get("X-Snapshot-Time"))
	if hdr.Get("X-Snapshot-Source") != "archive" || err != nil || taken.After(at) || at.Sub(taken) > 1100*time.Millisecond {
		t.Fatalf("source %q, keyframe at %v for %v", hdr.Get("X-Snapshot-Source"), taken, at)
	}
	if code, _, body := snapshotGet(t, n, "cam1", viewerToken(t, "bob"), q, false); code != 403 {
		t.Fatalf("live only, snapshot from the recording: %d %s", code, body)
	}
	if code, _, body := snapshotGet(t, n, "cam1", alice, "at="+time.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339), false); code != 404 {
		t.Fatalf("no recording then: %d %s", code, body)
	}

	from, to := taken.Add(time.Millisecond), at.Add(time.Minute)
	mk := func(from, to time.Time) string {
		out := mustCall(t, n, "POST", "/links", fmt.Sprintf(`{"device":"cam1","actions":["archive"],"not_after":%q,"footage_from":%q,"footage_to":%q}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano)), 201)
		return out["token"].(string)
	}
	if code, _, body := snapshotGet(t, n, "cam1", mk(from, to), q, false); code != 403 {
		t.Fatalf("keyframe before the link's footage window: %d %s", code, body)
	}
	code, hdr, body = snapshotGet(t, n, "cam1", mk(taken, to), q, false)
	wantJPEG(t, code, hdr, body, 640, 360)
}
