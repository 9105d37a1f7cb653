package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/camgate/camgate/archive/mp4"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// Segment files of an import folder are foreign input: mediamtx, ffmpeg or
// anything that can write a file there. These targets feed arbitrary bytes
// to what reads a segment's boxes when indexing, serving it as HLS and
// building a download. The properties: no panic, an error that says
// something, results within the file, and no allocation a size field can
// inflate beyond what the file's length justifies.

// segmentSeeds records a short segment with the package's own writer, and
// the same segment carrying mediamtx's mtxi box. The ffmpeg-made segment
// (B-frames, AAC, default-base-is-moof) is in testdata/fuzz.
func segmentSeeds(f *testing.F) [][]byte {
	dir := f.TempDir()
	s := newTestStore(f, dir, &fakeClock{now: t0.Add(time.Hour)})
	recordSynthetic(f, s, "cam1", t0, 700*time.Millisecond, 48)
	segs := s.Segments("cam1", t0, t0.Add(time.Minute))
	s.Close()
	if len(segs) == 0 {
		f.Fatal("the writer left no segment")
	}
	b, err := os.ReadFile(filepath.Join(dir, "cam1", segs[0].name))
	if err != nil {
		f.Fatal(err)
	}
	return [][]byte{b, withMtxi(f, b, t0)}
}

// allocBound is what parsing n bytes may allocate: a fixed allowance (the
// box decoders' buffers, the download's header) plus a multiple of n.
func allocBound(n int) uint64 { return 4<<20 + 64*uint64(n) }

// allocated runs fn and returns the bytes it allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// FuzzScanSegment: indexing (scanSegment) and, for what it indexes,
// serving the init and the fragments of the complete prefix as HLS.
func FuzzScanSegment(f *testing.F) {
	for _, b := range segmentSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var sc segmentScan
		var err error
		used := allocated(func() { sc, err = scanSegment(bytes.NewReader(data), int64(len(data))) })
		if used > allocBound(len(data)) {
			t.Fatalf("indexing %d bytes allocated %d", len(data), used)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if sc.parts == 0 {
			return // not indexed
		}
		if sc.initLen <= 0 || sc.initLen > sc.validLen || sc.validLen > int64(len(data)) || sc.duration < 0 {
			t.Fatalf("scan %+v of %d bytes", sc, len(data))
		}
		b := data[:sc.validLen] // what the index serves
		for _, audio := range []bool{false, true} {
			used := allocated(func() {
				var buf seekablebuffer.Buffer
				_ = writeInit(&buf, append([]byte(nil), b...), audio)
				buf = seekablebuffer.Buffer{}
				_ = writeMedia(&buf, append([]byte(nil), b...), t0, audio)
			})
			if used > allocBound(len(b))+8*uint64(len(b)) {
				t.Fatalf("serving %d bytes allocated %d", len(b), used)
			}
		}
	})
}

// FuzzDownloadTables: the download's own moov/moof reader and, when it
// reads the tables, the sample layout and header built from them.
func FuzzDownloadTables(f *testing.F) {
	for _, b := range segmentSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		var st *sampleTables
		var err error
		used := allocated(func() {
			var w mp4.Window
			w.Reset(bytes.NewReader(data), size)
			st, err = readSampleTables(&w, nil)
			if err == nil {
				// A second pass reuses the first one's entries, as
				// consecutive segments of a download do.
				w.Reset(bytes.NewReader(data), size)
				st, err = readSampleTables(&w, st)
			}
		})
		if used > allocBound(len(data)) {
			t.Fatalf("reading the tables of %d bytes allocated %d", len(data), used)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		for _, r := range st.Runs {
			end := r.DataOffset
			for _, e := range r.Entries {
				end += int64(e.Size)
			}
			if r.DataOffset < 0 || end > size {
				t.Fatalf("track %d: samples at [%d, %d) of a %d-byte file", r.TrackID, r.DataOffset, end, size)
			}
		}
		used = allocated(func() {
			m := &mp4Muxer{}
			if !m.setInit(st, true) {
				return
			}
			m.addRuns(st, 0, 1, 0, time.Hour)
			tracks := m.finish()
			if len(tracks) == 0 {
				return
			}
			pieces := layoutChunks(tracks)
			var n int64
			for _, p := range pieces {
				if p.off < 0 || p.size < 0 || p.off+p.size > size {
					t.Fatalf("piece %+v of a %d-byte file", p, size)
				}
				n += p.size
			}
			if _, err := buildHeader(st.hdr, tracks, n, 0); err != nil && err.Error() == "" {
				t.Fatal("an error without a message")
			}
		})
		if used > allocBound(len(data)) {
			t.Fatalf("building the download of %d bytes allocated %d", len(data), used)
		}
	})
}
