package archive

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func allowAll(context.Context, string, string, string, time.Time) (Viewer, error) {
	return Viewer{Subject: "bench", Sound: true}, nil
}

// benchLayout is how the recorder cut the footage.
type benchLayout struct {
	name          string
	segment, part time.Duration
}

var benchLayouts = []benchLayout{
	{"default", 10 * time.Second, time.Second},         // Store defaults
	{"short", 2 * time.Second, 500 * time.Millisecond}, // the tests' store: 5x the files and fragments
}

// benchStore holds a minute of synthetic footage: 25 fps of frameSize
// bytes (5000: ~1 Mbit/s, 20000: ~4 Mbit/s) and 50 audio frames a second.
func benchStore(b *testing.B, frameSize int, l benchLayout) (*Store, []Segment, int64) {
	b.Helper()
	s := newTestStore(b, b.TempDir(), &fakeClock{now: t0.Add(time.Hour)})
	b.Cleanup(s.Close)
	s.SegmentDuration, s.PartDuration = l.segment, l.part
	s.Authorizer = AuthorizerFunc(allowAll)
	recordSynthetic(b, s, "cam1", t0, time.Minute, frameSize)
	segs := s.Segments("cam1", t0, t0.Add(time.Hour))
	var size int64
	for _, sg := range segs {
		size += sg.Size
	}
	return s, segs, size
}

func benchCases(b *testing.B, run func(b *testing.B, frameSize int, l benchLayout)) {
	for _, l := range benchLayouts {
		for _, fs := range []int{5000, 20000} {
			b.Run(fmt.Sprintf("layout=%s/frame=%d", l.name, fs), func(b *testing.B) { run(b, fs, l) })
		}
	}
}

// BenchmarkDownload streams the whole minute as one MP4 (tables, header,
// payloads); compare with BenchmarkDownloadRawRead, which only reads the
// same files, or see both side by side in BenchmarkDownloadVsRaw.
func BenchmarkDownload(b *testing.B) {
	benchCases(b, func(b *testing.B, frameSize int, l benchLayout) {
		s, _, size := benchStore(b, frameSize, l)
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			benchDownloadOnce(b, s)
		}
	})
}

func benchDownloadOnce(b *testing.B, s *Store) {
	d, err := s.PrepareDownload(context.Background(), "t", "cam1", t0, t0.Add(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Write(io.Discard); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkDownloadRawRead(b *testing.B) {
	benchCases(b, func(b *testing.B, frameSize int, l benchLayout) {
		s, segs, size := benchStore(b, frameSize, l)
		b.SetBytes(size)
		b.ReportAllocs()
		buf := make([]byte, 32<<10)
		for b.Loop() {
			benchRawOnce(b, s, segs, buf)
		}
	})
}

func benchRawOnce(b *testing.B, s *Store, segs []Segment, buf []byte) {
	for _, sg := range segs {
		f, err := os.Open(filepath.Join(s.Dir, "cam1", sg.name()))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, f, buf); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// benchRawLargeReads reads the files in reads as large as the download's:
// the strict baseline (BenchmarkDownloadRawRead's io.Copy into io.Discard
// reads 8 KiB at a time).
func benchRawLargeReads(b *testing.B, s *Store, segs []Segment, buf []byte) {
	for _, sg := range segs {
		f, err := os.Open(filepath.Join(s.Dir, "cam1", sg.name()))
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := f.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
	}
}

// BenchmarkDownloadVsRaw alternates raw reads of the files and a download
// of them, so all see the same machine state, and reports the download's
// throughput as a fraction of the raw read's: x_raw against
// BenchmarkDownloadRawRead's copy (the goal is >= 0.8), x_raw128k
// against reads as large as the download's.
func BenchmarkDownloadVsRaw(b *testing.B) {
	benchCases(b, func(b *testing.B, frameSize int, l benchLayout) {
		s, segs, size := benchStore(b, frameSize, l)
		buf := make([]byte, 32<<10)
		big := make([]byte, copyBuffer)
		var raw, rawBig, dl time.Duration
		for b.Loop() {
			t := time.Now()
			benchRawOnce(b, s, segs, buf)
			raw += time.Since(t)
			t = time.Now()
			benchRawLargeReads(b, s, segs, big)
			rawBig += time.Since(t)
			t = time.Now()
			benchDownloadOnce(b, s)
			dl += time.Since(t)
		}
		n := float64(b.N)
		b.ReportMetric(float64(raw)/float64(dl), "x_raw")
		b.ReportMetric(float64(rawBig)/float64(dl), "x_raw128k")
		b.ReportMetric(float64(size)*n/dl.Seconds()/1e6, "dl_MB/s")
		b.ReportMetric(float64(size)*n/raw.Seconds()/1e6, "raw_MB/s")
	})
}

// BenchmarkPlaylist24h builds the playlist of a day of 10 s segments,
// authorizing each one.
func BenchmarkPlaylist24h(b *testing.B) {
	s := newTestStore(b, b.TempDir(), &fakeClock{now: t0.Add(48 * time.Hour)})
	b.Cleanup(s.Close)
	s.Authorizer = AuthorizerFunc(allowAll)
	for i := range 8640 {
		st := t0.Add(time.Duration(i) * 10 * time.Second)
		s.index.add("cam1", Segment{Start: st, Duration: 10 * time.Second, Size: 1 << 20, stem: st.UnixMicro(), tracks: 1})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		pl, err := s.Playlist(context.Background(), "a-token-of-some-length.eyJzdWIiOiJhbGljZSJ9.sig", "cam1", t0, t0.Add(24*time.Hour))
		if err != nil || len(pl) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkSegmentAuthorization is the per-segment authorization overhead
// on top of the Authorizer itself (trivial here).
func BenchmarkSegmentAuthorization(b *testing.B) {
	s := newTestStore(b, b.TempDir(), &fakeClock{now: t0})
	b.Cleanup(s.Close)
	s.Authorizer = AuthorizerFunc(allowAll)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.authorize(ctx, "token", "cam1", ActionArchive, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeSegment is one segment request end to end (no network):
// lookup, authorization, read, remux.
func BenchmarkServeSegment(b *testing.B) {
	s, segs, _ := benchStore(b, 5000, benchLayouts[1])
	var ctx fasthttp.RequestCtx
	uri := "/archive/cam1/" + segs[1].ID() + ".mp4?a=1&token=t"
	b.SetBytes(segs[1].Size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI(uri)
		s.ServeSegment(&ctx, "cam1", segs[1].ID())
		if ctx.Response.StatusCode() != 200 {
			b.Fatal(string(ctx.Response.Body()))
		}
	}
}
