package archive

// The download's muxer: sample tables of consecutive segments gathered
// into one progressive MP4's tracks, and the layout of its mdat.

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/camgate/camgate/archive/mp4"
)

// maxPrealloc bounds the samples reserved per track ahead of reading
// them: about an hour of 25 fps video with its audio.
const maxPrealloc = 1 << 18

// mp4Muxer gathers the download's sample tables the way mediamtx's
// playback muxer does: a sync sample before the range start drops what came
// before it, so the file starts on the keyframe preceding start and an edit
// list hides the lead-in.
type mp4Muxer struct {
	window mp4.Window // reused for every segment
	prev   *sampleTables
	init   []initInfo // the first segment's tracks
	hdr    []byte     // the first segment's ftyp+moov
	tracks []*dlTrack
}

// dlTrack is one track of the download.
type dlTrack struct {
	id        int
	timeScale uint32
	samples   []dlSample
	chunks    []int64 // mdat offset of each chunk, relative to the mdat's payload
	start     int64   // DTS of samples[0] on the download's timeline; < 0: a lead-in
	lastDTS   int64
	ended     bool
}

// dlSample is one sample of the download and where its payload lies.
type dlSample struct {
	off   int64 // in its segment file
	seg   int32 // index in Download.segs
	size  uint32
	dur   uint32
	cts   int32
	sync  bool
	first bool // begins a chunk (set by layoutChunks)
}

func (m *mp4Muxer) setInit(sc *sampleTables, sound bool) bool {
	var keep []initInfo
	for _, t := range sc.tracks {
		if t.handler == "vide" || (sound && t.handler == "soun") {
			keep = append(keep, t)
		}
	}
	if m.init == nil {
		m.init, m.hdr = keep, sc.hdr
		for _, t := range keep {
			m.tracks = append(m.tracks, &dlTrack{id: t.id, timeScale: t.timeScale})
		}
		return len(keep) > 0
	}
	return slices.Equal(keep, m.init)
}

func (m *mp4Muxer) track(id int) *dlTrack {
	for _, t := range m.tracks {
		if t.id == id {
			return t
		}
	}
	return nil
}

func (t *dlTrack) add(dts int64, s dlSample) {
	// A sync sample before the range start, or the first one after a
	// lead-in, makes what was gathered so far useless: start over here.
	if s.sync && (dts < 0 || t.lastDTS < 0) {
		t.samples = t.samples[:0]
	}
	if len(t.samples) == 0 {
		if !s.sync {
			return // a decoder cannot start on a non-sync sample
		}
		t.start = dts
	} else {
		t.samples[len(t.samples)-1].dur = clampDuration(dts - t.lastDTS)
	}
	t.samples = append(t.samples, s)
	t.lastDTS = dts
}

func (t *dlTrack) finalDTS(dts int64) {
	if n := len(t.samples); n > 0 {
		t.samples[n-1].dur = clampDuration(dts - t.lastDTS)
	}
}

func clampDuration(v int64) uint32 { return uint32(min(max(v, 0), math.MaxUint32)) }

// finish returns the tracks that have samples inside the range.
func (m *mp4Muxer) finish() []*dlTrack {
	var out []*dlTrack
	for _, t := range m.tracks {
		if len(t.samples) > 0 && t.lastDTS >= 0 {
			out = append(out, t)
		}
	}
	return out
}

// layoutChunks groups each track's samples into chunks (runs contiguous in
// one segment file), orders every chunk as in the segment files, assigns
// their offsets in the mdat and returns the byte ranges to copy, adjacent
// chunks merged: with sound, a whole fragment's payload is one range.
func layoutChunks(tracks []*dlTrack) []piece {
	type chunk struct {
		piece
		track, index int
	}
	var chunks []chunk
	for ti, t := range tracks {
		for i := range t.samples {
			s := &t.samples[i]
			if n := len(chunks); n > 0 && i > 0 {
				c := &chunks[n-1]
				if c.seg == s.seg && c.off+c.size == s.off {
					c.size += int64(s.size)
					continue
				}
			}
			s.first = true
			chunks = append(chunks, chunk{piece: piece{seg: s.seg, off: s.off, size: int64(s.size)}, track: ti, index: len(t.chunks)})
			t.chunks = append(t.chunks, 0)
		}
	}
	slices.SortStableFunc(chunks, func(a, b chunk) int {
		return cmp.Or(cmp.Compare(a.seg, b.seg), cmp.Compare(a.off, b.off))
	})
	var pieces []piece
	var at int64
	for _, c := range chunks {
		tracks[c.track].chunks[c.index] = at
		at += c.size
		if n := len(pieces); n > 0 && pieces[n-1].seg == c.seg && pieces[n-1].off+pieces[n-1].size == c.off {
			pieces[n-1].size += c.size
			continue
		}
		pieces = append(pieces, c.piece)
	}
	return pieces
}

// addRuns appends the samples of segment idx (its tables sc, time 0 at
// offset on the download's timeline) that start before span; left is how
// many segments, this one included, the download still reads.
func (m *mp4Muxer) addRuns(sc *sampleTables, idx, left int, offset, span time.Duration) {
	// Size the tables once for the whole download: this segment's sample
	// count times the segments left, up to maxPrealloc (one lying segment
	// must not reserve its count times every segment behind it).
	for _, t := range m.tracks {
		n := 0
		for _, tr := range sc.Runs {
			if tr.TrackID == t.id {
				n += len(tr.Entries)
			}
		}
		if cap(t.samples)-len(t.samples) < n {
			t.samples = slices.Grow(t.samples, max(n, min(n*left, maxPrealloc)))
		}
	}
	for _, tr := range sc.Runs {
		t := m.track(tr.TrackID)
		if t == nil || t.ended {
			continue
		}
		dts := durationToTicks(offset, t.timeScale) + int64(tr.Base)
		if n := len(t.samples); n > 0 {
			// Segments of an import may overlap a little (mediamtx and
			// ffmpeg start every file's tracks at 0, audio runs past the
			// video): a run starts where the track's previous one ended.
			dts = max(dts, t.lastDTS+int64(t.samples[n-1].dur))
		}
		limit := durationToTicks(span, t.timeScale)
		off := tr.DataOffset
		for _, e := range tr.Entries {
			if dts >= limit {
				t.ended = true // the first sample past the range ends the track
				break
			}
			t.add(dts, dlSample{seg: int32(idx), off: off, size: e.Size, cts: e.CTS, sync: e.Flags&mp4.FlagNonSync == 0})
			off += int64(e.Size)
			dts += int64(e.Dur)
		}
		t.finalDTS(dts)
	}
}
