package mp4

// The progressive muxer: the sample tables of consecutive fragmented
// segments gathered into one MP4's tracks, the layout of its mdat as byte
// ranges of the segments, and its header (moov.go, stbl.go).

import (
	"cmp"
	"errors"
	"io"
	"math"
	"slices"
	"time"
)

// maxPrealloc bounds the samples reserved per track ahead of reading
// them: about an hour of 25 fps video with its audio.
const maxPrealloc = 1 << 18

// Muxer gathers the sample tables of consecutive segments into one
// progressive MP4 the way mediamtx's playback muxer does: a sync sample before the range start drops what came
// before it, so the file starts on the keyframe preceding start and an edit
// list hides the lead-in.
type Muxer struct {
	window Window // reused for every segment
	prev   *sampleTables
	init   []initInfo // the first segment's tracks
	hdr    []byte     // the first segment's ftyp+moov
	tracks []*outTrack
	pieces []Piece
}

// Piece is a byte range of source segment Src copied verbatim into the
// mdat; the pieces of a file, in order, are its whole mdat payload.
type Piece struct {
	Src       int32 // the index AddSegment was given
	Off, Size int64
}

// ErrNoSamples: no track has a sample inside the range.
var ErrNoSamples = errors.New("no samples in the range")

// AddSegment reads the init and every moof (never an mdat) of a segment
// (r, size bytes; src names it in the Pieces) whose time 0 is at offset on
// the file's timeline, and appends its samples that start before span;
// left is how many segments, this one included, are still to come (it
// sizes the tables once). Only video tracks are kept, and sound ones when
// sound. It reports false, adding nothing, when the segment's tracks
// differ from the first segment's: the file ends there.
func (m *Muxer) AddSegment(r io.ReaderAt, size int64, src int32, left int, offset, span time.Duration, sound bool) (bool, error) {
	m.window.Reset(r, size)
	sc, err := readSampleTables(&m.window, m.prev)
	if err != nil {
		return false, err
	}
	m.prev = sc
	if !m.setInit(sc, sound) {
		return false, nil
	}
	m.addRuns(sc, src, left, offset, span)
	return true, nil
}

// Finish lays the samples out and returns the file's header (ftyp, moov
// and the mdat header; chunk offsets are 64-bit past co64Above bytes) and
// the pieces that follow it. ErrNoSamples when there is nothing to play.
func (m *Muxer) Finish(co64Above int64) (header []byte, pieces []Piece, _ error) {
	tracks := m.finish()
	if len(tracks) == 0 {
		return nil, nil, ErrNoSamples
	}
	pieces = layoutChunks(tracks)
	var n int64
	for _, p := range pieces {
		n += p.Size
	}
	header, err := buildHeader(m.hdr, tracks, n, co64Above)
	if err != nil {
		return nil, nil, err
	}
	return header, pieces, nil
}

// outTrack is one track of the download.
type outTrack struct {
	id        int
	timeScale uint32
	samples   []outSample
	chunks    []int64 // mdat offset of each chunk, relative to the mdat's payload
	start     int64   // DTS of samples[0] on the download's timeline; < 0: a lead-in
	lastDTS   int64
	ended     bool
}

// outSample is one sample of the download and where its payload lies.
type outSample struct {
	off   int64 // in its source segment
	src   int32 // Piece.Src
	size  uint32
	dur   uint32
	cts   int32
	sync  bool
	first bool // begins a chunk (set by layoutChunks)
}

func (m *Muxer) setInit(sc *sampleTables, sound bool) bool {
	var keep []initInfo
	for _, t := range sc.tracks {
		if t.handler == "vide" || (sound && t.handler == "soun") {
			keep = append(keep, t)
		}
	}
	if m.init == nil {
		m.init, m.hdr = keep, sc.hdr
		for _, t := range keep {
			m.tracks = append(m.tracks, &outTrack{id: t.id, timeScale: t.timeScale})
		}
		return len(keep) > 0
	}
	return slices.Equal(keep, m.init)
}

func (m *Muxer) track(id int) *outTrack {
	for _, t := range m.tracks {
		if t.id == id {
			return t
		}
	}
	return nil
}

func (t *outTrack) add(dts int64, s outSample) {
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

func (t *outTrack) finalDTS(dts int64) {
	if n := len(t.samples); n > 0 {
		t.samples[n-1].dur = clampDuration(dts - t.lastDTS)
	}
}

func clampDuration(v int64) uint32 { return uint32(min(max(v, 0), math.MaxUint32)) }

// finish returns the tracks that have samples inside the range.
func (m *Muxer) finish() []*outTrack {
	var out []*outTrack
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
func layoutChunks(tracks []*outTrack) []Piece {
	type chunk struct {
		Piece
		track, index int
	}
	var chunks []chunk
	for ti, t := range tracks {
		for i := range t.samples {
			s := &t.samples[i]
			if n := len(chunks); n > 0 && i > 0 {
				c := &chunks[n-1]
				if c.Src == s.src && c.Off+c.Size == s.off {
					c.Size += int64(s.size)
					continue
				}
			}
			s.first = true
			chunks = append(chunks, chunk{Piece: Piece{Src: s.src, Off: s.off, Size: int64(s.size)}, track: ti, index: len(t.chunks)})
			t.chunks = append(t.chunks, 0)
		}
	}
	slices.SortStableFunc(chunks, func(a, b chunk) int {
		return cmp.Or(cmp.Compare(a.Src, b.Src), cmp.Compare(a.Off, b.Off))
	})
	var pieces []Piece
	var at int64
	for _, c := range chunks {
		tracks[c.track].chunks[c.index] = at
		at += c.Size
		if n := len(pieces); n > 0 && pieces[n-1].Src == c.Src && pieces[n-1].Off+pieces[n-1].Size == c.Off {
			pieces[n-1].Size += c.Size
			continue
		}
		pieces = append(pieces, c.Piece)
	}
	return pieces
}

// addRuns appends the samples of segment src (its tables sc, time 0 at
// offset on the download's timeline) that start before span; left is how
// many segments, this one included, the download still reads.
func (m *Muxer) addRuns(sc *sampleTables, src int32, left int, offset, span time.Duration) {
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
		dts := ToTicks(offset, t.timeScale) + int64(tr.Base)
		if n := len(t.samples); n > 0 {
			// Segments of an import may overlap a little (mediamtx and
			// ffmpeg start every file's tracks at 0, audio runs past the
			// video): a run starts where the track's previous one ended.
			dts = max(dts, t.lastDTS+int64(t.samples[n-1].dur))
		}
		limit := ToTicks(span, t.timeScale)
		off := tr.DataOffset
		for _, e := range tr.Entries {
			if dts >= limit {
				t.ended = true // the first sample past the range ends the track
				break
			}
			t.add(dts, outSample{src: src, off: off, size: e.Size, cts: e.CTS, sync: e.Flags&FlagNonSync == 0})
			off += int64(e.Size)
			dts += int64(e.Dur)
		}
		t.finalDTS(dts)
	}
}
