package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The download's ftyp, moov and mdat header are written by hand with plain
// appends: a moov holds a handful of table entries per sample, and a
// reflective box marshaller made them cost more than copying the payloads.
// Codec descriptions (stsd) and the track headers are copied from the
// recording's own init, so every codec the recorder stores downloads as is.

var errBadInit = errors.New("malformed init")

// boxBuf appends boxes; start/end pairs nest and end patches the size.
type boxBuf struct {
	b    []byte
	open []int
}

func (w *boxBuf) start(typ string) {
	w.open = append(w.open, len(w.b))
	w.b = append(w.b, 0, 0, 0, 0, typ[0], typ[1], typ[2], typ[3])
}

func (w *boxBuf) fullBox(typ string, version byte, flags uint32) {
	w.start(typ)
	w.b = append(w.b, version, byte(flags>>16), byte(flags>>8), byte(flags))
}

func (w *boxBuf) end() {
	i := w.open[len(w.open)-1]
	w.open = w.open[:len(w.open)-1]
	binary.BigEndian.PutUint32(w.b[i:], uint32(len(w.b)-i))
}

func (w *boxBuf) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *boxBuf) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }

// children calls fn for every child box of the box at b[bx.Off:bx.End()],
// skipping skip bytes after its header (a full box's version and flags).
func children(b []byte, bx Box, skip int64, fn func(c Box) error) error {
	for off := bx.Off + 8 + skip; off < bx.End(); {
		c, err := At(b[:bx.End()], off)
		if err != nil {
			return fmt.Errorf("%w: in %s: %w", errBadInit, bx.Type, err)
		}
		if err := fn(c); err != nil {
			return err
		}
		off = c.End()
	}
	return nil
}

// durationBox copies a mvhd, tkhd or mdhd with its duration set. mid is
// the bytes between the modification time and the duration (timescale: 4,
// track id + reserved: 8). A version 0 box whose duration does not fit 32
// bits is written as version 1.
func (w *boxBuf) durationBox(src []byte, mid int, dur uint64) error {
	be := binary.BigEndian
	if len(src) < 12 {
		return errBadInit
	}
	version, p := src[8], src[12:]
	var created, modified uint64
	var middle, rest []byte
	switch version {
	case 0:
		if len(p) < 12+mid {
			return errBadInit
		}
		created, modified = uint64(be.Uint32(p)), uint64(be.Uint32(p[4:]))
		middle, rest = p[8:8+mid], p[12+mid:]
	case 1:
		if len(p) < 24+mid {
			return errBadInit
		}
		created, modified = be.Uint64(p), be.Uint64(p[8:])
		middle, rest = p[16:16+mid], p[24+mid:]
	default:
		return fmt.Errorf("%w: %s version %d", errBadInit, src[4:8], version)
	}
	if dur > math.MaxUint32 {
		version = 1
	}
	w.fullBox(string(src[4:8]), version, be.Uint32(src[8:12])&0xffffff)
	if version == 1 {
		w.u64(created)
		w.u64(modified)
		w.b = append(w.b, middle...)
		w.u64(dur)
	} else {
		w.u32(uint32(created))
		w.u32(uint32(modified))
		w.b = append(w.b, middle...)
		w.u32(uint32(dur))
	}
	w.b = append(w.b, rest...)
	w.end()
	return nil
}

// timescaleOf reads the timescale of a mvhd or mdhd.
func timescaleOf(src []byte) uint32 {
	switch {
	case len(src) >= 24 && src[8] == 0:
		return binary.BigEndian.Uint32(src[20:])
	case len(src) >= 32 && src[8] == 1:
		return binary.BigEndian.Uint32(src[28:])
	}
	return 0
}

// initInfo is what the download needs of a recorded track: which it is,
// its clock and its codec (the sample entry's type). Two segments whose
// kept tracks are equal can share one moov.
type initInfo struct {
	id        int
	timeScale uint32
	handler   string // "vide", "soun", ...
	entry     string // "avc1", "hvc1", "mp4a", "Opus", ...
}

// initTracks reads the tracks of an init (ftyp+moov) without a generic box
// decoder: the download reads one per recording.
func initTracks(b []byte) ([]initInfo, error) {
	ftyp, err := At(b, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadInit, err)
	}
	moov, err := At(b, ftyp.End())
	if err != nil || moov.Type != "moov" {
		return nil, fmt.Errorf("%w: no moov after ftyp", errBadInit)
	}
	var out []initInfo
	err = children(b, moov, 0, func(trak Box) error {
		if trak.Type != "trak" {
			return nil
		}
		t := initInfo{id: trakID(b, trak)}
		err := walk(b, trak, func(c Box) error {
			p := b[c.Off:c.End()]
			switch c.Type {
			case "mdhd":
				t.timeScale = timescaleOf(p)
			case "hdlr": // version+flags 4, pre_defined 4, handler_type 4
				if len(p) >= 20 {
					t.handler = string(p[16:20])
				}
			case "stsd": // version+flags 4, entry_count 4, first entry
				if len(p) >= 24 {
					t.entry = string(p[20:24])
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if t.id == 0 || t.timeScale == 0 || t.handler == "" || t.entry == "" {
			return fmt.Errorf("%w: incomplete trak", errBadInit)
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

// walk calls fn for every box under bx, descending into the containers on
// the way to a sample description.
func walk(b []byte, bx Box, fn func(c Box) error) error {
	return children(b, bx, 0, func(c Box) error {
		if err := fn(c); err != nil {
			return err
		}
		switch c.Type {
		case "mdia", "minf", "stbl":
			return walk(b, c, fn)
		}
		return nil
	})
}

// headerWriter builds ftyp+moov+mdat header for a set of tracks.
type headerWriter struct {
	boxBuf
	src        []byte // the recording's ftyp+moov
	movieScale uint32
	large      bool    // co64 and a 64-bit mdat size
	cos        []coRef // chunk offset tables to rebase once the header size is known
}

type coRef struct {
	pos    int // first entry in b
	chunks []int64
}

// buildHeader writes the header of an MP4 whose mdat holds dataSize bytes.
// Past co64Above bytes of file (0: past what 32 bits reach) it writes
// 64-bit chunk offsets and mdat size.
func buildHeader(src []byte, tracks []*outTrack, dataSize, co64Above int64) ([]byte, error) {
	if co64Above <= 0 {
		co64Above = math.MaxUint32
	}
	h := &headerWriter{src: src}
	if err := h.build(tracks, dataSize); err != nil {
		return nil, err
	}
	if !h.large && int64(len(h.b))+dataSize > co64Above {
		h = &headerWriter{src: src, large: true}
		if err := h.build(tracks, dataSize); err != nil {
			return nil, err
		}
	}
	base := uint64(len(h.b))
	for _, c := range h.cos {
		for i, off := range c.chunks {
			if h.large {
				binary.BigEndian.PutUint64(h.b[c.pos+8*i:], base+uint64(off))
			} else {
				binary.BigEndian.PutUint32(h.b[c.pos+4*i:], uint32(base+uint64(off)))
			}
		}
	}
	return h.b, nil
}

func (h *headerWriter) build(tracks []*outTrack, dataSize int64) error {
	h.start("ftyp")
	h.b = append(h.b, "isom"...)
	h.u32(0x200)
	h.b = append(h.b, "isomiso2mp41"...)
	if negativeCTS(tracks) {
		h.b = append(h.b, "iso4"...) // ctts version 1
	}
	h.end()
	ftyp, err := At(h.src, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadInit, err)
	}
	moov, err := At(h.src, ftyp.End())
	if err != nil || moov.Type != "moov" {
		return fmt.Errorf("%w: no moov", errBadInit)
	}
	traks := map[int]Box{}
	var mvhd Box
	err = children(h.src, moov, 0, func(c Box) error {
		switch c.Type {
		case "mvhd":
			mvhd = c
		case "trak":
			traks[trakID(h.src, c)] = c
		}
		return nil
	})
	if err != nil {
		return err
	}
	if mvhd.Type == "" {
		return fmt.Errorf("%w: no mvhd", errBadInit)
	}
	if h.movieScale = timescaleOf(h.src[mvhd.Off:mvhd.End()]); h.movieScale == 0 {
		return fmt.Errorf("%w: mvhd timescale", errBadInit)
	}
	var movieDur uint64
	for _, t := range tracks {
		_, d := h.edits(t, t.mediaDuration())
		movieDur = max(movieDur, d)
	}
	h.start("moov")
	if err := h.durationBox(h.src[mvhd.Off:mvhd.End()], 4, movieDur); err != nil {
		return err
	}
	for _, t := range tracks {
		trak, ok := traks[t.id]
		if !ok {
			return fmt.Errorf("%w: no trak for track %d", errBadInit, t.id)
		}
		if err := h.trak(t, trak); err != nil {
			return err
		}
	}
	h.end()
	if h.large {
		h.u32(1)
		h.b = append(h.b, "mdat"...)
		h.u64(uint64(dataSize) + 16)
	} else {
		h.u32(uint32(dataSize) + 8)
		h.b = append(h.b, "mdat"...)
	}
	return nil
}

func negativeCTS(tracks []*outTrack) bool {
	for _, t := range tracks {
		for _, s := range t.samples {
			if s.cts < 0 {
				return true
			}
		}
	}
	return false
}

// trakID reads the track_ID of a trak's tkhd (0 when there is none).
func trakID(b []byte, trak Box) int {
	id := 0
	children(b, trak, 0, func(c Box) error {
		if c.Type != "tkhd" || c.Size < 32 {
			return nil
		}
		at := c.Off + 20 // header 8, version+flags 4, two 32-bit times
		if b[c.Off+8] == 1 {
			at = c.Off + 28
		}
		if at+4 <= c.End() {
			id = int(binary.BigEndian.Uint32(b[at:]))
		}
		return nil
	})
	return id
}

// trak writes one track from the recording's trak: tkhd and mdhd with
// durations, a new edit list, the recording's stsd and new sample tables.
func (h *headerWriter) trak(t *outTrack, trak Box) error {
	mediaDur := t.mediaDuration()
	edits, movieDur := h.edits(t, mediaDur)
	h.start("trak")
	err := children(h.src, trak, 0, func(c Box) error {
		switch c.Type {
		case "tkhd":
			if err := h.durationBox(h.src[c.Off:c.End()], 8, movieDur); err != nil {
				return err
			}
			h.writeEdits(edits)
		case "edts":
		case "mdia":
			return h.mdia(t, c, uint64(mediaDur))
		default:
			h.b = append(h.b, h.src[c.Off:c.End()]...)
		}
		return nil
	})
	h.end()
	return err
}

// mediaDuration is the sum of the sample durations, in the track's timescale.
func (t *outTrack) mediaDuration() int64 {
	var d int64
	for _, s := range t.samples {
		d += int64(s.dur)
	}
	return d
}

func (h *headerWriter) mdia(t *outTrack, mdia Box, mediaDur uint64) error {
	h.start("mdia")
	err := children(h.src, mdia, 0, func(c Box) error {
		switch c.Type {
		case "mdhd":
			return h.durationBox(h.src[c.Off:c.End()], 4, mediaDur)
		case "minf":
			h.start("minf")
			err := children(h.src, c, 0, func(c Box) error {
				if c.Type == "stbl" {
					return h.stbl(t, c)
				}
				h.b = append(h.b, h.src[c.Off:c.End()]...)
				return nil
			})
			h.end()
			return err
		default:
			h.b = append(h.b, h.src[c.Off:c.End()]...)
		}
		return nil
	})
	h.end()
	return err
}

// edit is one elst entry: duration in the movie timescale, media time in
// the track's (-1: an empty edit).
type edit struct {
	dur  uint64
	time int64
}

// edits maps the download's timeline onto the track: a track starting
// after the range start waits in an empty edit; a lead-in (the GOP part
// before the range start) is skipped by starting the media later. The media
// time is a composition time, hence the first sample's offset.
func (h *headerWriter) edits(t *outTrack, mediaDur int64) ([]edit, uint64) {
	toMovie := func(v int64) uint64 {
		return uint64(max(v, 0)) * uint64(h.movieScale) / uint64(t.timeScale)
	}
	lead := max(-t.start, 0)
	var out []edit
	if t.start > 0 {
		out = append(out, edit{dur: toMovie(t.start), time: -1})
	}
	out = append(out, edit{dur: toMovie(mediaDur - lead), time: max(lead+int64(t.samples[0].cts), 0)})
	var total uint64
	for _, e := range out {
		total += e.dur
	}
	return out, total
}

func (h *headerWriter) writeEdits(edits []edit) {
	version := byte(0)
	for _, e := range edits {
		if e.dur > math.MaxUint32 || e.time > math.MaxInt32 {
			version = 1
		}
	}
	h.start("edts")
	h.fullBox("elst", version, 0)
	h.u32(uint32(len(edits)))
	for _, e := range edits {
		if version == 1 {
			h.u64(e.dur)
			h.u64(uint64(e.time))
		} else {
			h.u32(uint32(e.dur))
			h.u32(uint32(int32(e.time)))
		}
		h.u32(1 << 16) // media_rate 1.0
	}
	h.end()
	h.end()
}
