package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// sameSegments fails unless a and b list the same files with the same
// start, size and tracks; durations may differ by the scan's rounding
// (the writer knows its duration in ns, a scan in track ticks).
func sameSegments(t *testing.T, what string, a, b []Segment) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d segments, want %d", what, len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.name() != y.name() || !x.Start.Equal(y.Start) || x.Size != y.Size || x.tracks != y.tracks || x.src != y.src ||
			(x.Duration-y.Duration).Abs() > time.Millisecond {
			t.Fatalf("%s: segment %d is %+v, want %+v", what, i, x, y)
		}
	}
}

// fullScan is the index a Store builds with no index files: every
// segment file opened and scanned.
func fullScan(t *testing.T, dir string, clock *fakeClock, cam string) []Segment {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*", indexFileName))
	saved := make(map[string][]byte)
	for _, p := range m {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		saved[p] = b
		os.Remove(p)
	}
	s := newTestStore(t, dir, clock)
	segs := s.Segments(cam, time.Time{}, maxTime)
	s.Close()
	for p, b := range saved {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return segs
}

// restart opens a new Store on dir and returns cam's segments as soon as
// Initialize returned (from the index files alone) and once reconciled.
func restart(t *testing.T, dir string, clock *fakeClock, cam string) (atStart, reconciled []Segment) {
	t.Helper()
	s := &Store{Dir: dir, SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Now: clock.Now,
		PruneInterval: time.Hour, Authorizer: AuthorizerFunc(allowAll)}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	atStart = s.Segments(cam, time.Time{}, maxTime)
	<-s.indexed
	reconciled = s.Segments(cam, time.Time{}, maxTime)
	s.Close()
	return atStart, reconciled
}

// readRecords reads cam's index file, by name (µs).
func readRecords(t *testing.T, dir, cam string) map[int64]indexRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, cam, indexFileName))
	if err != nil {
		t.Fatal(err)
	}
	recs, torn, err := parseIndexFile(b)
	if err != nil || torn {
		t.Fatalf("index file: torn %v, %v", torn, err)
	}
	out := make(map[int64]indexRecord)
	for _, r := range recs {
		out[r.name] = r
	}
	return out
}

// recorded9s records 9 s of cam1 (5 segments) into a new folder.
func recorded9s(t *testing.T) (string, *fakeClock, []Segment) {
	t.Helper()
	dir := t.TempDir()
	clock := &fakeClock{now: t0.Add(time.Hour)}
	s := newTestStore(t, dir, clock)
	recordSynthetic(t, s, "cam1", t0, 9*time.Second, 1000)
	recorded := s.Segments("cam1", time.Time{}, maxTime)
	s.Close()
	return dir, clock, recorded
}

func TestIndexFileRoundTrip(t *testing.T) {
	dir, clock, recorded := recorded9s(t)
	mustLen(t, "segments", recorded, 5)
	recs := readRecords(t, dir, "cam1")
	if len(recs) != len(recorded) {
		t.Fatalf("index file holds %d records, want %d", len(recs), len(recorded))
	}
	// The recorded sizes are the files' (else every restart rescans).
	for _, sg := range recorded {
		st, err := os.Stat(filepath.Join(dir, "cam1", sg.name()))
		if err != nil || st.Size() != recs[sg.Start.UnixMicro()].size {
			t.Fatalf("%s: file %v, index file says %d bytes", sg.name(), err, recs[sg.Start.UnixMicro()].size)
		}
	}
	scanned := fullScan(t, dir, clock, "cam1")
	sameSegments(t, "full scan", scanned, recorded)
	atStart, reconciled := restart(t, dir, clock, "cam1")
	sameSegments(t, "from the index file", atStart, recorded)
	sameSegments(t, "reconciled", reconciled, recorded)
}

func TestIndexFileTornAndCorrupt(t *testing.T) {
	dir, clock, recorded := recorded9s(t)
	path := filepath.Join(dir, "cam1", indexFileName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"torn last record", append(bytes.Clone(good), good[indexHeaderSize:indexHeaderSize+20]...)},
		{"last record garbled", func() []byte { b := bytes.Clone(good); b[len(b)-10] ^= 0xff; return b }()},
		{"record before the last garbled", func() []byte { b := bytes.Clone(good); b[indexHeaderSize+3] ^= 0xff; return b }()},
		{"wrong magic", append([]byte("XXXX"), good[4:]...)},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			_, reconciled := restart(t, dir, clock, "cam1")
			sameSegments(t, "reconciled", reconciled, recorded)
			if recs := readRecords(t, dir, "cam1"); len(recs) != len(recorded) {
				t.Fatalf("rewritten index file holds %d records, want %d", len(recs), len(recorded))
			}
		})
	}
}

// Files deleted or copied in by hand: the folder wins over the index file.
func TestIndexFileStaleAndUnindexedFiles(t *testing.T) {
	dir, clock, recorded := recorded9s(t)
	// Delete the second segment, copy the first in under a later name.
	if err := os.Remove(filepath.Join(dir, "cam1", recorded[1].name())); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cam1", recorded[0].name()))
	if err != nil {
		t.Fatal(err)
	}
	added := SegmentName(t0.Add(time.Minute)) + segmentExt
	if err := os.WriteFile(filepath.Join(dir, "cam1", added), b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fullScan(t, dir, clock, "cam1")
	mustLen(t, "full scan", want, len(recorded))
	if want[len(want)-1].name() != added {
		t.Fatalf("full scan missed %s", added)
	}
	_, reconciled := restart(t, dir, clock, "cam1")
	sameSegments(t, "reconciled", reconciled, want)
	recs := readRecords(t, dir, "cam1")
	if len(recs) != len(want) {
		t.Fatalf("index file holds %d records, want %d", len(recs), len(want))
	}
	if _, ok := recs[recorded[1].Start.UnixMicro()]; ok {
		t.Fatal("the deleted segment is still in the index file")
	}
	// Once rewritten, the index file alone gives the same list.
	atStart, _ := restart(t, dir, clock, "cam1")
	sameSegments(t, "from the rewritten index file", atStart, want)
}

// Retention rewrites an index file once most of its records are gone.
func TestIndexFileCompactedByRetention(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: t0.Add(time.Minute)}
	s := newTestStore(t, dir, clock)
	defer s.Close()
	s.Retention = time.Hour
	recordSynthetic(t, s, "cam1", t0, 20*time.Second, 1000)
	all := s.Segments("cam1", time.Time{}, maxTime)
	mustLen(t, "segments", all, 10)
	clock.now = all[7].End().Add(time.Hour + time.Millisecond)
	if n := s.Prune(); n != 8 {
		t.Fatalf("pruned %d, want 8", n)
	}
	recs := readRecords(t, dir, "cam1")
	if len(recs) != 2 {
		t.Fatalf("index file holds %d records after retention, want 2", len(recs))
	}
	for _, sg := range all[8:] {
		if _, ok := recs[sg.Start.UnixMicro()]; !ok {
			t.Fatalf("segment %s missing from the compacted index file", sg.name())
		}
	}
	// Recording goes on appending to the compacted file.
	recordSynthetic(t, s, "cam1", t0.Add(time.Minute), 4*time.Second, 1000)
	if recs := readRecords(t, dir, "cam1"); len(recs) != 4 {
		t.Fatalf("index file holds %d records, want 4", len(recs))
	}
}

func FuzzParseIndexFile(f *testing.F) {
	valid := appendIndexHeader(nil)
	for i := range 3 {
		st := t0.Add(time.Duration(i) * 10 * time.Second)
		valid = appendIndexRecord(valid, indexRecord{name: st.UnixMicro(), start: st.UnixNano(), duration: 10 * time.Second, size: 4096, tracks: 7})
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-5])
	f.Add(valid[:indexHeaderSize])
	f.Add([]byte("CGIX"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, _, err := parseIndexFile(b)
		if err != nil {
			if recs != nil {
				t.Fatal("records with an error")
			}
			return
		}
		out := appendIndexHeader(nil)
		for _, r := range recs {
			if r.duration <= 0 || r.duration > maxIndexSegment || r.size <= 0 || r.name < 0 || r.name >= maxIndexMicros {
				t.Fatalf("implausible record accepted: %+v", r)
			}
			if n := SegmentName(time.UnixMicro(r.name)); len(n) != segmentNameLen {
				t.Fatalf("record name %q", n)
			}
			out = appendIndexRecord(out, r)
		}
		again, torn, err := parseIndexFile(out)
		if err != nil || torn || !slices.Equal(again, recs) {
			t.Fatalf("re-encoded records: %d of %d, torn %v, %v", len(again), len(recs), torn, err)
		}
		segs := entriesOf(func() []entry {
			var es []entry
			for _, r := range again {
				es = append(es, r.entry())
			}
			return es
		}())
		for i := 1; i < len(segs); i++ {
			if segs[i-1].start >= segs[i].start {
				t.Fatalf("entries not strictly sorted by start at %d", i)
			}
		}
	})
}

// A segment being recorded when the folder is reconciled is neither
// repaired nor indexed early: its Writer indexes it when it completes.
func TestReconcileLeavesRecordingSegment(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: t0.Add(time.Hour)}
	s := newTestStore(t, dir, clock)
	defer s.Close()
	w, err := s.NewWriter("cam1", []Track{{Codec: &codecs.H264{SPS: testSPS, PPS: testPPS}, ClockRate: 90000}})
	if err != nil {
		t.Fatal(err)
	}
	frame := []byte{0, 0, 0, 60, 0x65}
	frame = append(frame, make([]byte, 60-1)...)
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if err := w.WriteSample(0, Sample{DTS: int64(i) * 3600, Sync: i%25 == 0, Payload: frame, NTP: t0.Add(time.Duration(i) * 40 * time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 40) // 1.6 s: the first part is on disk, the segment open
	files, _ := filepath.Glob(filepath.Join(dir, "cam1", "*.mp4"))
	mustLen(t, "files being written", files, 1)
	before, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	s.reconcile("cam1", false)
	if after, err := os.Stat(files[0]); err != nil || after.Size() != before.Size() {
		t.Fatalf("reconcile touched the segment being written: %v, %v", before.Size(), err)
	}
	mustLen(t, "segments while recording", s.Segments("cam1", time.Time{}, maxTime), 0)
	write(40, 50)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs := s.Segments("cam1", time.Time{}, maxTime)
	mustLen(t, "segments", segs, 1)
	if st, err := os.Stat(files[0]); err != nil || st.Size() != segs[0].Size {
		t.Fatalf("segment file %v, indexed size %d", err, segs[0].Size)
	}
}

func TestSegmentNameDigits(t *testing.T) {
	for _, tm := range []time.Time{t0, time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2199, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 3, 4, 5, 6, 7, 8009000, time.FixedZone("x", 3600))} {
		want := tm.UTC().Format("2006-01-02_15-04-05") + "-" + tm.UTC().Format(".000000")[1:]
		if got := SegmentName(tm); got != want {
			t.Errorf("SegmentName(%v) = %q, want %q", tm, got, want)
		}
		if got := segmentFileName(tm); got != want+segmentExt {
			t.Errorf("segmentFileName(%v) = %q", tm, got)
		}
	}
}
