package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// probe is what ffprobe reports of a file.
type probe struct {
	Duration float64
	Codecs   []string
}

func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	// Only stdout: the synthetic payloads are not decodable H264, and
	// ffprobe says so on stderr.
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name",
		"-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var r struct {
		Format  struct{ Duration string }
		Streams []struct {
			CodecName string `json:"codec_name"`
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	var p probe
	p.Duration, _ = strconv.ParseFloat(r.Format.Duration, 64)
	for _, s := range r.Streams {
		p.Codecs = append(p.Codecs, s.CodecName)
	}
	return p
}

// withMute answers like the test authorizer, but the token "mute" is
// "admin" without sound.
func withMute(a Authorizer) Authorizer {
	return AuthorizerFunc(func(ctx context.Context, tok, camera, action string, at time.Time) (Viewer, error) {
		if tok != "mute" {
			return a.Authorize(ctx, tok, camera, action, at)
		}
		v, err := a.Authorize(ctx, "admin", camera, action, at)
		v.Sound = false
		return v, err
	})
}

// writeDownload writes d to a file and returns its path.
func writeDownload(t *testing.T, d *Download) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dl.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDownload(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, &fakeClock{now: t0.Add(time.Hour)})
	defer s.Close()
	s.Authorizer = withMute(s.Authorizer)
	s.MaxDownload = time.Minute
	recordSynthetic(t, s, "cam1", t0, 10*time.Second, 3000)
	c := serve(t, s)
	at := func(ms int) string { return rfc(t0.Add(time.Duration(ms) * time.Millisecond)) }
	for _, tc := range []struct {
		name       string
		start, end int // ms after t0
		token      string
		code       int
		codecs     []string
	}{
		{name: "everything, with sound", start: 0, end: 10000, token: "admin", code: 200, codecs: []string{"h264", "opus"}},
		{name: "mid-GOP start and end", start: 1500, end: 6300, token: "admin", code: 200, codecs: []string{"h264", "opus"}},
		{name: "across segments, no sound", start: 2500, end: 9100, token: "mute", code: 200, codecs: []string{"h264"}},
		{name: "range ends past the recording", start: 8000, end: 30000, token: "admin", code: 200, codecs: []string{"h264", "opus"}},
		{name: "archive without download", start: 0, end: 4000, token: "viewer", code: 403},
		{name: "no token", start: 0, end: 4000, code: 401},
		{name: "range over the cap", start: 0, end: 61000, token: "admin", code: 400},
		{name: "nothing recorded", start: 20000, end: 30000, token: "admin", code: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uri := "/archive/cam1/download?start=" + at(tc.start) + "&end=" + at(tc.end)
			if tc.token != "" {
				uri += "&token=" + tc.token
			}
			code, body, h := do(t, c, "GET", uri, "", nil)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			if code != 200 {
				return
			}
			if cl := h.ContentLength(); cl != len(body) {
				t.Fatalf("Content-Length %d, body %d bytes", cl, len(body))
			}
			want := `attachment; filename="cam1_` + t0.Add(time.Duration(tc.start)*time.Millisecond).Format("20060102T150405Z")
			if cd := string(h.Peek("Content-Disposition")); !strings.HasPrefix(cd, want) {
				t.Fatalf("Content-Disposition %q, want prefix %q", cd, want)
			}
			path := filepath.Join(t.TempDir(), "dl.mp4")
			if err := os.WriteFile(path, body, 0o644); err != nil {
				t.Fatal(err)
			}
			p := ffprobe(t, path)
			if !slices.Equal(p.Codecs, tc.codecs) {
				t.Fatalf("streams %v, want %v", p.Codecs, tc.codecs)
			}
			wantDur := float64(min(tc.end, 10000)-tc.start) / 1000
			if math.Abs(p.Duration-wantDur) > 0.1 {
				t.Fatalf("duration %.3f s, want %.3f", p.Duration, wantDur)
			}
		})
	}
}

// TestDownloadMatchesReader: WriteTo, Write and Read give the same bytes,
// as many as Size says.
func TestDownloadMatchesReader(t *testing.T) {
	s := newTestStore(t, t.TempDir(), &fakeClock{now: t0.Add(time.Hour)})
	defer s.Close()
	recordSynthetic(t, s, "cam1", t0, 5*time.Second, 1000)
	prepare := func() *Download {
		d, err := s.PrepareDownload(context.Background(), "admin", "cam1", t0.Add(700*time.Millisecond), t0.Add(4*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	var viaWriteTo bytes.Buffer
	d := prepare()
	if n, err := d.WriteTo(&viaWriteTo); err != nil || n != d.Size() {
		t.Fatalf("WriteTo: %d of %d bytes, %v", n, d.Size(), err)
	}
	var viaCopy bytes.Buffer
	if err := prepare().Write(struct{ io.Writer }{&viaCopy}); err != nil {
		t.Fatal(err)
	}
	d = prepare()
	viaRead, err := io.ReadAll(struct{ io.Reader }{d}) // hides WriterTo: Read only
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(viaWriteTo.Bytes(), viaCopy.Bytes()) || !bytes.Equal(viaWriteTo.Bytes(), viaRead) {
		t.Fatalf("WriteTo %d bytes, copy %d, Read %d: they differ", viaWriteTo.Len(), viaCopy.Len(), len(viaRead))
	}
}

// TestDownloadRealFootagePlays downloads from fragments ffmpeg wrote (H264
// with B-frames, AAC), served as a mediamtx import: the file decodes without
// an error, with the frames of the range and its duration.
func TestDownloadRealFootagePlays(t *testing.T) {
	mtx := t.TempDir()
	cam := filepath.Join(mtx, "cam1")
	if err := os.MkdirAll(cam, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		name := t0.Add(time.Duration(i)*4*time.Second).Format(segmentLayout) + "-000000.mp4"
		out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
			"-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "25", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-b:a", "64k", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "500000",
			filepath.Join(cam, name)).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg: %v\n%s", err, out)
		}
	}
	s := &Store{Dir: t.TempDir(), Imports: []Import{{Dir: mtx, Location: time.UTC}}, Now: (&fakeClock{now: t0.Add(time.Hour)}).Now,
		Authorizer: &testAuth{allow: map[string][]string{"admin": {ActionDownload}}}}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustLen(t, "imported segments", s.Segments("cam1", t0, t0.Add(time.Minute)), 2)
	d, err := s.PrepareDownload(context.Background(), "admin", "cam1", t0.Add(1500*time.Millisecond), t0.Add(6500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	path := writeDownload(t, d)
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("decoding the download: %v\n%s", err, out)
	}
	p := ffprobe(t, path)
	if !slices.Equal(p.Codecs, []string{"h264", "aac"}) || math.Abs(p.Duration-5) > 0.1 {
		t.Fatalf("streams %v, duration %.3f s; want h264, aac and 5 s", p.Codecs, p.Duration)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); n != 125 {
		t.Fatalf("%s frames decoded, want the range's 5 s × 25 fps = 125", strings.TrimSpace(string(out)))
	}
}
