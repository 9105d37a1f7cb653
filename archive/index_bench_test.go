package archive

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// largeArchive builds cams cameras of perCam real 10 s segments each in
// dir: one segment is recorded with the Writer, then hard-linked under
// every name (the scan reads each file's boxes, so each must be valid),
// with the index files recording would have written.
func largeArchive(tb testing.TB, dir string, cams, perCam int) {
	tb.Helper()
	src := tb.TempDir()
	s := newTestStore(tb, src, &fakeClock{now: t0.Add(time.Hour)})
	s.SegmentDuration, s.PartDuration = 10*time.Second, time.Second
	recordSynthetic(tb, s, "cam", t0, 10*time.Second, 500)
	segs := s.Segments("cam", t0, t0.Add(time.Hour))
	s.Close()
	if len(segs) == 0 {
		tb.Fatal("no segment recorded")
	}
	seg, err := os.ReadFile(filepath.Join(src, "cam", segs[0].name()))
	if err != nil {
		tb.Fatal(err)
	}
	for c := range cams {
		camDir := filepath.Join(dir, "cam"+strconv.Itoa(c))
		if err := os.MkdirAll(camDir, 0o755); err != nil {
			tb.Fatal(err)
		}
		// One copy per camera, linked under every name (a file has at
		// most 65000 links).
		var first string
		idx := appendIndexHeader(nil)
		for i := range perCam {
			st := t0.Add(time.Duration(i) * 10 * time.Second)
			sg := segs[0]
			sg.Start = st
			sg.stem = st.UnixMicro()
			idx = appendIndexRecord(idx, recordOf(sg))
			name := filepath.Join(camDir, SegmentName(st)+segmentExt)
			if i == 0 {
				first = name
				err = os.WriteFile(name, seg, 0o644)
			} else {
				err = os.Link(first, name)
			}
			if err != nil {
				tb.Fatal(err)
			}
		}
		// The index files the Store would have written while recording.
		if err := os.WriteFile(filepath.Join(camDir, indexFileName), idx, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// benchSegments is how many segments BenchmarkInitialize indexes
// (CAMGATE_ARCHIVE_SEGMENTS, default 100 cameras × 1000); 7 days × 100
// cameras of 60 s segments is 1 008 000. restart=false (no index files:
// every file scanned) takes minutes past 100 000: run it with
// -bench 'Initialize/segments/restart=true' there.
func benchSegments() (cams, perCam int) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("CAMGATE_ARCHIVE_SEGMENTS")); err == nil && v > 0 {
		n = v
	}
	return 100, max(1, n/100)
}

// BenchmarkInitialize times a Store's startup on a large archive and
// reports the heap the index holds per segment.
func BenchmarkInitialize(b *testing.B) {
	cams, perCam := benchSegments()
	dir := benchArchiveDir(b, cams, perCam)
	for _, restart := range []bool{false, true} {
		b.Run(fmt.Sprintf("segments=%d/restart=%v", cams*perCam, restart), func(b *testing.B) {
			newStore := func() *Store {
				s := &Store{Dir: dir, PruneInterval: time.Hour, Retention: 1 << 62, Authorizer: AuthorizerFunc(allowAll)}
				if err := s.Initialize(); err != nil {
					b.Fatal(err)
				}
				return s
			}
			b.ReportAllocs()
			var heap uint64
			var reconciled time.Duration
			for b.Loop() {
				if !restart {
					b.StopTimer()
					removeIndexFiles(b, dir)
					b.StartTimer()
				}
				s := newStore()
				b.StopTimer()
				t := time.Now()
				<-s.indexed
				reconciled += time.Since(t)
				heap = liveHeap()
				if got := len(s.Segments("cam0", t0, t0.Add(time.Duration(perCam)*10*time.Second))); got != perCam {
					b.Fatalf("cam0: %d segments, want %d", got, perCam)
				}
				s.Close()
				runtime.KeepAlive(s)
				b.StartTimer()
			}
			b.ReportMetric(float64(heap)/float64(cams*perCam), "heapB/segment")
			b.ReportMetric(float64(reconciled.Milliseconds())/float64(b.N), "reconcile_ms")
		})
	}
}

// benchArchiveDir is a large archive of cams × perCam segments: built
// in a temporary folder, or once in CAMGATE_ARCHIVE_BENCH_DIR and reused
// by later runs (6 M files take minutes to link).
func benchArchiveDir(b *testing.B, cams, perCam int) string {
	dir := os.Getenv("CAMGATE_ARCHIVE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
		largeArchive(b, dir, cams, perCam)
		return dir
	}
	dir = filepath.Join(dir, fmt.Sprintf("%dx%d", cams, perCam))
	done := filepath.Join(dir, ".built")
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	largeArchive(b, dir, cams, perCam)
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// removeIndexFiles deletes the persisted indexes (a first start).
func removeIndexFiles(tb testing.TB, dir string) {
	tb.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*", indexFileName))
	for _, p := range m {
		if err := os.Remove(p); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkServePlaylist24h is GET index.m3u8 for 24 h of 10 s segments
// (8640) indexed from real files, every segment authorized; see also
// BenchmarkPlaylist24h (Playlist alone).
func BenchmarkServePlaylist24h(b *testing.B) {
	dir := b.TempDir()
	largeArchive(b, dir, 1, 8640)
	s := &Store{Dir: dir, PruneInterval: time.Hour, Retention: 1 << 62, Authorizer: AuthorizerFunc(allowAll), Now: func() time.Time { return t0.Add(48 * time.Hour) }}
	if err := s.Initialize(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	var ctx fasthttp.RequestCtx
	uri := "/archive/cam0/index.m3u8?start=" + rfc(t0) + "&end=" + rfc(t0.Add(24*time.Hour)) + "&token=a-token-of-some-length.eyJzdWIiOiJhbGljZSJ9.sig"
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI(uri)
		s.ServePlaylist(&ctx, "cam0")
		if ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) < 8640*100 {
			b.Fatalf("%d: %.200s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkPrune is retention's periodic check of a week of 100 cameras
// of 10 s segments (6 M) when one segment per camera is due: it used to
// copy and sort every segment, once a minute and after every segment
// recorded under a disk budget.
func BenchmarkPrune(b *testing.B) {
	const cams, perCam = 100, 60480
	s := newTestStore(b, b.TempDir(), &fakeClock{now: t0})
	b.Cleanup(s.Close)
	s.Retention = time.Duration(perCam) * 10 * time.Second
	for c := range cams {
		segs := make([]entry, perCam)
		for i := range segs {
			st := t0.Add(time.Duration(i) * 10 * time.Second)
			segs[i] = entry{start: st.UnixNano(), dur: int64(10 * time.Second), size: 1 << 20, stem: st.UnixMicro()}
		}
		s.index.setCamera("cam"+strconv.Itoa(c), segs)
	}
	b.ReportAllocs()
	for b.Loop() {
		// The clock moves on by one segment: each camera's oldest is due
		// (its file is already gone: the removal is what is measured).
		b.StopTimer()
		oldest := s.index.rangeOf("cam0", time.Time{}, maxTime)[0].Start
		s.Now = func() time.Time { return oldest.Add(s.Retention + 10*time.Second + time.Millisecond) }
		b.StartTimer()
		if n := s.Prune(); n != cams {
			b.Fatalf("pruned %d, want %d", n, cams)
		}
	}
}
