package archive

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/archive/mp4"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestSegmentsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: t0.Add(time.Hour)}
	s := newTestStore(t, dir, clock)
	recordSynthetic(t, s, "cam1", t0, 7*time.Second, 1000)
	before := s.Segments("cam1", t0, t0.Add(time.Minute))
	s.Close()
	// 7 s in 2 s segments cut on 1 s keyframes: 2+2+2+1
	mustLen(t, "segments", before, 4)
	if got := filepath.Base(filepath.Join(dir, "cam1", before[0].name())); got != "2026-11-22_10-00-00-000000.mp4" {
		t.Fatalf("first segment file %q", got)
	}
	s = newTestStore(t, dir, clock)
	defer s.Close()
	after := s.Segments("cam1", t0, t0.Add(time.Minute))
	mustLen(t, "segments after restart", after, len(before))
	for i := range before {
		if !before[i].Start.Equal(after[i].Start) || (before[i].Duration-after[i].Duration).Abs() > time.Millisecond || before[i].Size != after[i].Size {
			t.Fatalf("segment %d: before %+v, after %+v", i, before[i], after[i])
		}
	}
}

// A crash leaves the last segment cut anywhere: after a restart it is
// either cut back to its last complete fragment or, with nothing complete
// left, dropped; what is served always parses.
func TestTruncatedSegmentIsNeverServed(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(size int64) int64
		kept bool
	}{
		{"mid fragment", func(size int64) int64 { return size - 700 }, true},
		{"inside the init", func(int64) int64 { return 100 }, false},
		{"one byte short", func(size int64) int64 { return size - 1 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := &fakeClock{now: t0.Add(time.Hour)}
			s := newTestStore(t, dir, clock)
			recordSynthetic(t, s, "cam1", t0, 6*time.Second, 1000)
			segs := s.Segments("cam1", t0, t0.Add(time.Minute))
			s.Close()
			last := segs[len(segs)-1]
			path := filepath.Join(dir, "cam1", last.name())
			if err := os.Truncate(path, tc.cut(last.Size)); err != nil {
				t.Fatal(err)
			}

			s = newTestStore(t, dir, clock)
			defer s.Close()
			after := s.Segments("cam1", t0, t0.Add(time.Minute))
			if !tc.kept {
				mustLen(t, "segments", after, len(segs)-1)
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Fatalf("segment with no complete fragment left on disk: %v", err)
				}
				c := serve(t, s)
				if code, _, _ := do(t, c, "GET", "/archive/cam1/"+last.ID()+".mp4?token=admin", "", nil); code != 404 {
					t.Fatalf("dropped segment served: %d", code)
				}
				return
			}
			mustLen(t, "segments", after, len(segs))
			got := after[len(after)-1]
			if got.Duration > last.Duration || got.Size >= last.Size {
				t.Fatalf("repaired segment %+v not shorter than %+v", got, last)
			}
			if st, _ := os.Stat(path); st.Size() != got.Size {
				t.Fatalf("file is %d bytes, index says %d", st.Size(), got.Size)
			}
			c := serve(t, s)
			code, body, _ := do(t, c, "GET", "/archive/cam1/"+got.ID()+".mp4?token=admin", "", nil)
			var parts fmp4.Parts
			if code != 200 || parts.Unmarshal(body) != nil || len(parts) == 0 {
				t.Fatalf("repaired segment: %d, %d parts", code, len(parts))
			}
			code, body, _ = do(t, c, "GET", "/archive/cam1/download?start="+rfc(t0)+"&end="+rfc(got.End())+"&token=admin", "", nil)
			if code != 200 || !bytes.Contains(body[:64], []byte("ftyp")) {
				t.Fatalf("download after repair: %d", code)
			}
		})
	}
}

func TestRetentionByAgeAndDiskBudget(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: t0.Add(time.Minute)}
	s := newTestStore(t, dir, clock)
	defer s.Close()
	s.Retention = time.Hour
	recordSynthetic(t, s, "cam1", t0, 10*time.Second, 1000)
	recordSynthetic(t, s, "cam2", t0.Add(30*time.Minute), 10*time.Second, 1000)
	if n := s.Prune(); n != 0 {
		t.Fatalf("pruned %d fresh segments", n)
	}
	// An hour and a bit later part of cam1's footage is too old, cam2's is not.
	clock.now = t0.Add(time.Hour + 5*time.Second)
	all := s.Segments("cam1", t0, t0.Add(time.Hour))
	old := 0
	for _, sg := range all {
		if sg.End().Before(clock.now.Add(-time.Hour)) {
			old++
		}
	}
	if old == 0 || old == len(all) {
		t.Fatalf("test needs some old and some fresh segments, got %d of %d old", old, len(all))
	}
	if n := s.Prune(); n != old {
		t.Fatalf("pruned %d, want the %d segments that ended before %v", n, old, clock.now.Add(-time.Hour))
	}
	left := s.Segments("cam1", t0, t0.Add(time.Hour))
	mustLen(t, "cam1 segments", left, len(all)-old)
	if !left[0].Start.Equal(all[old].Start) {
		t.Fatalf("oldest left starts %v, want %v", left[0].Start, all[old].Start)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "cam1", "*.mp4"))
	mustLen(t, "cam1 files", files, len(left))

	// Disk budget: keep the newest segments that fit.
	cam2 := s.Segments("cam2", t0, t0.Add(time.Hour))
	s.MaxBytes = cam2[len(cam2)-1].Size + cam2[len(cam2)-2].Size
	s.Prune()
	if got := s.Segments("cam1", t0, t0.Add(2*time.Hour)); len(got) != 0 {
		t.Fatalf("cam1 kept %d segments over budget", len(got))
	}
	mustLen(t, "cam2 segments within budget", s.Segments("cam2", t0, t0.Add(time.Hour)), 2)
}

// An existing mediamtx folder: local-time names, and mediamtx's own "mtxi"
// start-time mp4.Box, which the generic init decoder does not know.
func TestMediaMTXFolderIsIndexedReadOnly(t *testing.T) {
	own, mtx := t.TempDir(), t.TempDir()
	clock := &fakeClock{now: t0.Add(time.Hour)}
	s := newTestStore(t, own, clock)
	recordSynthetic(t, s, "cam1", t0, 4*time.Second, 1000)
	segs := s.Segments("cam1", t0, t0.Add(time.Minute))
	s.Close()
	zone := time.FixedZone("UTC+2", 2*3600)
	if err := os.MkdirAll(filepath.Join(mtx, "door"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, sg := range segs {
		b, err := os.ReadFile(filepath.Join(own, "cam1", sg.name()))
		if err != nil {
			t.Fatal(err)
		}
		name := sg.Start.In(zone).Format(segmentLayout) + "-000000.mp4"
		if i == 1 {
			b = withMtxi(t, b, sg.Start)
			name = "2000-01-01_00-00-00-000000.mp4" // the box wins over the name
		}
		if err := os.WriteFile(filepath.Join(mtx, "door", name), b, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	s = newTestStore(t, own, clock)
	s.Close()
	s.Imports = []Import{{Dir: mtx, Location: zone}}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := s.Segments("door", t0, t0.Add(time.Minute))
	mustLen(t, "imported segments", got, len(segs))
	for i := range got {
		if !got[i].Start.Equal(segs[i].Start) {
			t.Fatalf("imported segment %d starts %v, want %v", i, got[i].Start, segs[i].Start)
		}
	}
	clock.now = t0.Add(30 * 24 * time.Hour)
	if n := s.Prune(); n != len(segs) {
		t.Fatalf("retention deleted %d segments, want our own %d", n, len(segs))
	}
	mustLen(t, "imported segments after retention", s.Segments("door", t0, t0.Add(time.Minute)), len(segs))
	c := serve(t, s)
	code, body, _ := do(t, c, "GET", "/archive/door/index.m3u8?start="+rfc(t0)+"&end="+rfc(t0.Add(time.Minute))+"&token=admin", "", nil)
	if code != 200 || strings.Count(string(body), "#EXTINF") != len(segs) {
		t.Fatalf("playlist of the import: %d\n%s", code, body)
	}
	if code, _, _ := do(t, c, "GET", "/archive/door/"+got[1].ID()+".mp4?init=1&token=admin", "", nil); code != 200 {
		t.Fatalf("init of the mtxi segment: %d", code)
	}
}

// withMtxi appends a udta{mtxi} box, as mediamtx writes it, to the moov.
func withMtxi(t testing.TB, b []byte, start time.Time) []byte {
	t.Helper()
	ftyp, _ := mp4.At(b, 0)
	moov, err := mp4.At(b, ftyp.End())
	if err != nil || moov.Type != "moov" {
		t.Fatal("no moov")
	}
	mtxi := make([]byte, 52)
	binary.BigEndian.PutUint32(mtxi, 52)
	copy(mtxi[4:], "mtxi")
	binary.BigEndian.PutUint64(mtxi[44:], uint64(start.UnixNano()))
	udta := append([]byte{0, 0, 0, 60, 'u', 'd', 't', 'a'}, mtxi...)
	out := append([]byte(nil), b[:moov.End()]...)
	out = append(out, udta...)
	binary.BigEndian.PutUint32(out[moov.Off:], uint32(moov.Size)+uint32(len(udta)))
	return append(out, b[moov.End():]...)
}
