package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/poll"
)

// fakeAuthorizer: tokens name what they may do; "window" sees only footage
// recorded at or after windowFrom.
type fakeAuthorizer struct {
	windowFrom time.Time
}

func (f *fakeAuthorizer) Authorize(_ context.Context, token, camera, action string, footage time.Time) (archive.Viewer, error) {
	if camera != "cam1" {
		return archive.Viewer{}, archive.ErrUnknownCamera
	}
	switch token {
	case "full":
		return archive.Viewer{Subject: "alice", Sound: true}, nil
	case "nosound":
		return archive.Viewer{Subject: "bob"}, nil
	case "archive-only":
		if action == archive.ActionArchive {
			return archive.Viewer{Subject: "carol", Sound: true}, nil
		}
		return archive.Viewer{}, archive.ErrForbidden
	case "window":
		if footage.Before(f.windowFrom) {
			return archive.Viewer{}, fmt.Errorf("%w: footage before %s", archive.ErrForbidden, f.windowFrom.Format(time.RFC3339))
		}
		return archive.Viewer{Subject: "dave", Sound: true}, nil
	}
	return archive.Viewer{}, archive.ErrUnauthenticated
}

type harness struct {
	store *archive.Store
	auth  *fakeAuthorizer
	base  string
	segs  []archive.Segment
}

// recordDemo records the demo camera (played at 4x, so 2 s segments take
// half a second) until it has n complete segments, then serves the
// archive over HTTP.
func recordDemo(t *testing.T, n int) *harness {
	t.Helper()
	for _, bin := range []string{"ffprobe", "ffmpeg"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is required (apt-get install ffmpeg)", bin)
		}
	}
	h := &harness{auth: &fakeAuthorizer{}}
	h.store = &archive.Store{Dir: t.TempDir(), SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Authorizer: h.auth}
	if err := h.store.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.store.Close)
	hub := &stream.Hub{Sources: func(string) (source.Source, error) {
		return source.New(source.DemoURL, source.Options{Speed: 4})
	}}
	if err := hub.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	m := &Manager{Hub: hub, Archive: h.store}
	if err := m.Initialize(); err != nil {
		t.Fatal(err)
	}
	m.Start("cam1")
	all := func() []archive.Segment {
		return h.store.Segments("cam1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	}
	poll.Within(t, 20*time.Second, fmt.Sprint(n, " segments indexed"), func() bool { return len(all()) >= n })
	m.Close()
	h.segs = all()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if !h.store.Handle(ctx) {
			ctx.Error("not found", fasthttp.StatusNotFound)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	h.base = "http://" + ln.Addr().String()
	return h
}

type probeResult struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, target string) probeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration", "-of", "json", target)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffprobe %s: %v: %s", target, err, stderr.String())
	}
	var r probeResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r probeResult) kinds() string {
	var k []string
	for _, s := range r.Streams {
		k = append(k, s.CodecType+":"+s.CodecName)
	}
	return strings.Join(k, ",")
}

func (r probeResult) duration(t *testing.T) time.Duration {
	var d float64
	if _, err := fmt.Sscan(r.Format.Duration, &d); err != nil {
		t.Fatalf("duration %q: %v", r.Format.Duration, err)
	}
	return time.Duration(d * float64(time.Second))
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func get(t *testing.T, url string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func TestPlaybackPlaylistPlaysWithFFprobe(t *testing.T) {
	h := recordDemo(t, 3)
	first, last := h.segs[0], h.segs[len(h.segs)-1]
	var total time.Duration
	for _, s := range h.segs {
		total += s.Duration
	}
	for _, tc := range []struct{ token, want string }{
		{"full", "video:h264,audio:opus"},
		{"nosound", "video:h264"},
	} {
		t.Run(tc.token, func(t *testing.T) {
			url := fmt.Sprintf("%s/archive/cam1/index.m3u8?start=%s&end=%s&token=%s", h.base, rfc(first.Start), rfc(last.End()), tc.token)
			code, body, hdr := get(t, url)
			if code != 200 || !strings.Contains(string(body), "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.Contains(string(body), "#EXT-X-MAP:") {
				t.Fatalf("playlist: %d %s\n%s", code, hdr.Get("Content-Type"), body)
			}
			r := ffprobe(t, url)
			if got := r.kinds(); got != tc.want {
				t.Fatalf("streams %s, want %s", got, tc.want)
			}
			if d := r.duration(t); (d - total).Abs() > 300*time.Millisecond {
				t.Fatalf("playlist duration %v, segments hold %v", d, total)
			}
		})
	}
}

func TestDownloadIsOneMP4OfTheRange(t *testing.T) {
	h := recordDemo(t, 3)
	start := h.segs[0].Start.Add(500 * time.Millisecond)
	end := h.segs[len(h.segs)-1].End().Add(-300 * time.Millisecond)
	for _, tc := range []struct{ token, want string }{
		{"full", "video:h264,audio:opus"},
		{"nosound", "video:h264"},
	} {
		t.Run(tc.token, func(t *testing.T) {
			url := fmt.Sprintf("%s/archive/cam1/download?start=%s&end=%s&token=%s", h.base, rfc(start), rfc(end), tc.token)
			code, body, hdr := get(t, url)
			if code != 200 {
				t.Fatalf("download: %d %s", code, body)
			}
			if hdr.Get("Content-Type") != "video/mp4" || !strings.HasPrefix(hdr.Get("Content-Disposition"), `attachment; filename="cam1_`) {
				t.Fatalf("headers: %v", hdr)
			}
			file := filepath.Join(t.TempDir(), "dl.mp4")
			if err := os.WriteFile(file, body, 0o644); err != nil {
				t.Fatal(err)
			}
			r := ffprobe(t, file)
			if got := r.kinds(); got != tc.want {
				t.Fatalf("streams %s, want %s", got, tc.want)
			}
			if d, want := r.duration(t), end.Sub(start); math.Abs(float64(d-want)) > float64(150*time.Millisecond) {
				t.Fatalf("duration %v, want %v", d, want)
			}
			var stderr bytes.Buffer
			cmd := exec.Command("ffmpeg", "-v", "error", "-i", file, "-f", "null", "-")
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Fatalf("ffmpeg decode: %v %s", err, stderr.String())
			}
		})
	}
}

func playlistSegments(body []byte) []string {
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func TestAuthorizationPerSegment(t *testing.T) {
	h := recordDemo(t, 3)
	first, last := h.segs[0], h.segs[len(h.segs)-1]
	rng := fmt.Sprintf("start=%s&end=%s", rfc(first.Start), rfc(last.End()))

	t.Run("archive without download cannot download", func(t *testing.T) {
		code, body, _ := get(t, h.base+"/archive/cam1/download?"+rng+"&token=archive-only")
		if code != 403 || !strings.Contains(string(body), `"error"`) {
			t.Fatalf("got %d %s, want 403 with an error", code, body)
		}
		if code, _, _ := get(t, h.base+"/archive/cam1/index.m3u8?"+rng+"&token=archive-only"); code != 200 {
			t.Fatalf("playlist with archive: %d", code)
		}
	})

	// The footage window starts at the second segment: the playlist leaves
	// the first one out, and asking for it directly is refused.
	t.Run("footage window", func(t *testing.T) {
		h.auth.windowFrom = h.segs[1].Start
		code, body, _ := get(t, h.base+"/archive/cam1/index.m3u8?"+rng+"&token=window")
		if code != 200 {
			t.Fatalf("playlist: %d %s", code, body)
		}
		got := playlistSegments(body)
		full := func() []string {
			_, b, _ := get(t, h.base+"/archive/cam1/index.m3u8?"+rng+"&token=full")
			return playlistSegments(b)
		}()
		if len(got) != len(full)-1 || strings.Contains(string(body), first.ID()) {
			t.Fatalf("window playlist has %d segments (full %d):\n%s", len(got), len(full), body)
		}
		if code, _, _ := get(t, h.base+"/archive/cam1/"+first.ID()+".mp4?token=window"); code != 403 {
			t.Fatalf("segment before the window: %d, want 403", code)
		}
		if code, _, _ := get(t, h.base+"/archive/cam1/"+h.segs[1].ID()+".mp4?token=window"); code != 200 {
			t.Fatalf("segment inside the window: %d, want 200", code)
		}
		if r := ffprobe(t, h.base+"/archive/cam1/index.m3u8?"+rng+"&token=window"); r.kinds() != "video:h264,audio:opus" {
			t.Fatalf("window playlist does not play: %s", r.kinds())
		}
		if code, _, _ := get(t, h.base+"/archive/cam1/download?"+rng+"&token=window"); code != 403 {
			t.Fatalf("download across the window edge: %d, want 403", code)
		}
		h.auth.windowFrom = last.End().Add(time.Hour)
		if code, body, _ := get(t, h.base+"/archive/cam1/index.m3u8?"+rng+"&token=window"); code != 403 {
			t.Fatalf("every segment refused: %d %s, want 403", code, body)
		}
	})

	now := time.Now().UTC()
	for _, tc := range []struct {
		name, path string
		code       int
	}{
		{"no token", "/archive/cam1/index.m3u8?" + rng, 401},
		{"bad token", "/archive/cam1/index.m3u8?" + rng + "&token=nobody", 401},
		{"unknown camera", "/archive/cam9/index.m3u8?" + rng + "&token=full", 404},
		{"start after end", fmt.Sprintf("/archive/cam1/index.m3u8?start=%s&end=%s&token=full", rfc(last.End()), rfc(first.Start)), 400},
		{"malformed start", "/archive/cam1/index.m3u8?start=yesterday&token=full", 400},
		{"missing start", "/archive/cam1/index.m3u8?token=full", 400},
		{"far future", fmt.Sprintf("/archive/cam1/index.m3u8?start=%s&token=full", rfc(now.Add(48*time.Hour))), 400},
		{"download too long", fmt.Sprintf("/archive/cam1/download?start=%s&end=%s&token=full", rfc(now.Add(-3*time.Hour)), rfc(now)), 400},
		{"download without end", fmt.Sprintf("/archive/cam1/download?start=%s&token=full", rfc(first.Start)), 400},
		{"nothing recorded", fmt.Sprintf("/archive/cam1/index.m3u8?start=%s&end=%s&token=full", rfc(now.Add(-3*time.Hour)), rfc(now.Add(-2*time.Hour))), 404},
		// fasthttp resolves "..", "%2e%2e" and "%2f" before routing; what
		// is left for the archive's own checks:
		{"segment name trick", "/archive/cam1/..%5c..%5cetc%5cpasswd.mp4?token=full", 400},
		{"camera name with NUL", "/archive/cam1%00/index.m3u8?" + rng + "&token=full", 400},
		{"dotted camera", "/archive/.cam1/index.m3u8?" + rng + "&token=full", 400},
		{"unknown segment", "/archive/cam1/2001-01-01_00-00-00-000000.mp4?token=full", 404},
		{"object id trick", "/archive/cam1/objects/..%2f2026.mp4?token=full", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr := get(t, h.base+tc.path)
			if code != tc.code {
				t.Fatalf("%s: %d %s, want %d", tc.path, code, body, tc.code)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || hdr.Get("Content-Type") != "application/json" {
				t.Fatalf("%s: body %q is not a JSON error", tc.path, body)
			}
		})
	}
}
