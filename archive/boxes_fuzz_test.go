package archive

import (
	"bytes"
	"context"
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
	b, err := os.ReadFile(filepath.Join(dir, "cam1", segs[0].name()))
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
				_ = writeInit(&buf, append([]byte(nil), b...), audio, silentAAC{})
				buf = seekablebuffer.Buffer{}
				_ = writeMedia(context.Background(), &buf, append([]byte(nil), b...), t0, audio, pcmPlayback{enc: silentAAC{}})
			})
			if used > allocBound(len(b))+8*uint64(len(b)) {
				t.Fatalf("serving %d bytes allocated %d", len(b), used)
			}
		}
	})
}

// FuzzDownloadTables: the download's muxer (archive/mp4) on one segment,
// read twice as consecutive segments of a download are (the second reuses
// the first one's tables): it reads the moov and every moof, never an
// mdat, and when it reads them the layout and header built from them stay
// inside the file and allocation stays bounded.
func FuzzDownloadTables(f *testing.F) {
	for _, b := range segmentSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		var header []byte
		var pieces []mp4.Piece
		var err error
		used := allocated(func() {
			m := &mp4.Muxer{}
			for src := range int32(2) {
				var same bool
				same, err = m.AddSegment(bytes.NewReader(data), size, src, int(2-src), time.Duration(src)*time.Hour, 2*time.Hour, true)
				if err != nil || !same {
					break
				}
			}
			if err == nil {
				header, pieces, err = m.Finish(0)
			}
		})
		if used > 2*allocBound(len(data)) {
			t.Fatalf("muxing twice %d bytes allocated %d", len(data), used)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if len(header) == 0 {
			t.Fatal("no header")
		}
		for _, p := range pieces {
			if p.Src < 0 || p.Src > 1 || p.Off < 0 || p.Size < 0 || p.Off+p.Size > size {
				t.Fatalf("piece %+v of a %d-byte file", p, size)
			}
		}
	})
}
