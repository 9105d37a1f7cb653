package mp4

import (
	"testing"
	"time"
)

// TestMuxerPreallocIsBounded: the sample tables are sized from the
// first segment's count times the segments left, but one segment claiming
// many samples must not reserve that for each of thousands behind it.
func TestMuxerPreallocIsBounded(t *testing.T) {
	entries := make([]Entry, 300)
	for i := range entries {
		entries[i] = Entry{Dur: 3600, Size: 10}
	}
	st := &sampleTables{
		tracks:    []initInfo{{id: 1, timeScale: 90000, handler: "vide", entry: "avc1"}},
		Fragments: Fragments{Runs: []Run{{TrackID: 1, Entries: entries}}},
	}
	m := &Muxer{}
	if !m.setInit(st, true) {
		t.Fatal("video track not kept")
	}
	m.addRuns(st, 0, 10000, 0, time.Hour)
	if n := len(m.tracks[0].samples); n != len(entries) {
		t.Fatalf("%d samples, want %d", n, len(entries))
	}
	if c := cap(m.tracks[0].samples); c > maxPrealloc*5/4 {
		t.Fatalf("reserved %d samples for 300 × 10000 segments, want at most about %d", c, maxPrealloc)
	}
}
