package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// errPartial marks a box that extends past the end of the data.
var errPartial = errors.New("partial box")

// maxInitSize bounds the ftyp+moov read into memory.
const maxInitSize = 1 << 20

type box struct {
	typ       string
	off, size int64
}

func (b box) end() int64 { return b.off + b.size }

func parseBoxHeader(h []byte, off, limit int64) (box, error) {
	size := int64(binary.BigEndian.Uint32(h[0:4]))
	bx := box{typ: string(h[4:8]), off: off, size: size}
	switch size {
	case 0: // "to the end of the file": only a writer that crashed leaves it
		return bx, errPartial
	case 1:
		if len(h) < 16 {
			return bx, errPartial
		}
		bx.size = int64(binary.BigEndian.Uint64(h[8:16]))
	}
	if bx.size < 8 || bx.size > limit-off {
		return bx, errPartial
	}
	return bx, nil
}

// boxAt reads the box header at off in b.
func boxAt(b []byte, off int64) (box, error) {
	if off < 0 || off+8 > int64(len(b)) {
		return box{}, errPartial
	}
	return parseBoxHeader(b[off:min(off+16, int64(len(b)))], off, int64(len(b)))
}

// readBoxAt reads the box header at off in a file of the given size.
func readBoxAt(r io.ReaderAt, off, size int64) (box, error) {
	var h [16]byte
	n := min(int64(16), size-off)
	if n < 8 {
		return box{}, errPartial
	}
	if _, err := r.ReadAt(h[:n], off); err != nil {
		return box{}, err
	}
	return parseBoxHeader(h[:n], off, size)
}

// segmentScan is what the index learns from a segment file.
type segmentScan struct {
	initLen  int64         // ftyp + moov
	validLen int64         // end of the last complete fragment
	parts    int           // complete fragments
	duration time.Duration // end of the last complete fragment
	ntp      time.Time     // start time from mediamtx's mtxi box, if any
	tracks   uint64        // fingerprint of the track descriptions
}

// scanSegment walks a segment's boxes: it finds the complete prefix (the
// init and every whole moof+mdat pair) and the duration it covers. A partial
// or foreign tail is left out of validLen.
func scanSegment(r io.ReaderAt, size int64) (segmentScan, error) {
	var sc segmentScan
	off := int64(0)
	for sc.initLen == 0 {
		b, err := readBoxAt(r, off, size)
		if err != nil {
			return sc, fmt.Errorf("no complete moov: %w", err)
		}
		if off == 0 && b.typ != "ftyp" {
			return sc, errors.New("not an MP4 file (no ftyp)")
		}
		off = b.end()
		if b.typ == "moov" {
			sc.initLen = off
		}
	}
	if sc.initLen > maxInitSize {
		return sc, errors.New("moov too large")
	}
	hdr := make([]byte, sc.initLen)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return sc, err
	}
	sc.tracks = tracksFingerprint(hdr)
	init, ntp, err := parseInit(hdr)
	if err != nil {
		return sc, err
	}
	sc.ntp = ntp
	sc.validLen = sc.initLen
	st := &sampleTables{fileSize: size}
	var moof []byte
	samples := 0
	for off < size {
		b, err := readBoxAt(r, off, size)
		if err != nil {
			break
		}
		if b.typ == "moof" {
			mdat, err := readBoxAt(r, b.end(), size)
			if err != nil || mdat.typ != "mdat" {
				break
			}
			if b.size > maxMoofSize {
				return sc, fmt.Errorf("moof at %d: %d bytes, at most %d", b.off, b.size, maxMoofSize)
			}
			moof = slices.Grow(moof[:0], int(b.size))[:b.size]
			if _, err := r.ReadAt(moof, b.off); err != nil {
				return sc, err
			}
			// Not wrapped: a malformed fragment is not a partial write
			// (scanFile deletes what errPartial marks).
			st.runs, st.entries = st.runs[:0], st.entries[:0]
			if err := st.addMoof(moof, b.off); err != nil {
				return sc, fmt.Errorf("fragment at %d: %v", b.off, err)
			}
			if sc.duration, err = runsEnd(st.runs, init); err != nil {
				return sc, fmt.Errorf("fragment at %d: %v", b.off, err)
			}
			samples += len(st.entries)
			sc.parts++
			off = mdat.end()
		} else {
			off = b.end()
		}
		sc.validLen = off
	}
	if int64(samples) > sc.validLen/minSampleBytes {
		return sc, fmt.Errorf("%d samples in %d bytes: at most one per %d bytes", samples, sc.validLen, minSampleBytes)
	}
	return sc, nil
}

// maxMoofSize bounds a moof read into memory: a fragment of a second or
// two has a few hundred samples, 16 bytes each at most.
const maxMoofSize = 1 << 20

// minSampleBytes: a segment claiming more than one sample per this many
// bytes is refused. Every real sample takes a trun entry or a payload of
// several bytes, and serving a segment as HLS costs the generic box
// decoder hundreds of bytes per sample: a file of default-size one-byte
// samples must not turn a kilobyte into a megabyte per request.
const minSampleBytes = 8

// parseInit decodes ftyp+moov. mediamtx stores its own "mtxi" box in udta;
// its start time is read, and the udta box is renamed "free" in b so the
// generic decoder does not trip on a box type it does not know.
func parseInit(b []byte) (*fmp4.Init, time.Time, error) {
	var ntp time.Time
	ftyp, err := boxAt(b, 0)
	if err != nil {
		return nil, ntp, err
	}
	moov, err := boxAt(b, ftyp.end())
	if err != nil || moov.typ != "moov" {
		return nil, ntp, errors.New("no moov after ftyp")
	}
	for off := moov.off + 8; off < moov.end(); {
		c, err := boxAt(b[:moov.end()], off)
		if err != nil {
			break
		}
		if c.typ == "udta" {
			for u := c.off + 8; u < c.end(); {
				m, err := boxAt(b[:c.end()], u)
				if err != nil {
					break
				}
				// mtxi: fullbox 4, stream id 16, segment number 8, dts 8, ntp 8
				if m.typ == "mtxi" && m.size >= 52 {
					ntp = time.Unix(0, int64(binary.BigEndian.Uint64(b[m.off+44:m.off+52]))).UTC()
				}
				u = m.end()
			}
			copy(b[c.off+4:c.off+8], "free")
		}
		off = c.end()
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b[:moov.end()])); err != nil {
		return nil, ntp, fmt.Errorf("init: %w", err)
	}
	return &init, ntp, nil
}

// tracksFingerprint hashes the trak boxes of an init: two segments with the
// same fingerprint can be played with one init section.
func tracksFingerprint(b []byte) uint64 {
	h := fnv.New64a()
	ftyp, err := boxAt(b, 0)
	if err != nil {
		return 0
	}
	moov, err := boxAt(b, ftyp.end())
	if err != nil {
		return 0
	}
	for off := moov.off + 8; off < moov.end(); {
		c, err := boxAt(b[:moov.end()], off)
		if err != nil {
			break
		}
		if c.typ == "trak" {
			h.Write(b[c.off:c.end()])
		}
		off = c.end()
	}
	return h.Sum64()
}

func initTrack(init *fmp4.Init, id int) *fmp4.InitTrack {
	for _, t := range init.Tracks {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// runsEnd returns the latest sample end time among a moof's runs.
func runsEnd(runs []trackRun, init *fmp4.Init) (time.Duration, error) {
	var end time.Duration
	for _, r := range runs {
		track := initTrack(init, r.trackID)
		if track == nil || track.TimeScale == 0 {
			return 0, fmt.Errorf("trun of track %d, which the moov does not have (or has no timescale)", r.trackID)
		}
		t := r.base
		for _, e := range r.entries {
			t += uint64(e.dur) // at most 2^52 more: no overflow past a sane base
		}
		if t/uint64(track.TimeScale) > uint64(maxSegmentDuration/time.Second) {
			return 0, fmt.Errorf("track %d ends %d s into the segment: more than %v", r.trackID, t/uint64(track.TimeScale), maxSegmentDuration)
		}
		end = max(end, ticksToDuration(int64(t), track.TimeScale))
	}
	return end, nil
}

// maxSegmentDuration bounds what a segment may cover: mediamtx cuts
// segments every hour by default; a day is a lie of its tfdt or durations.
const maxSegmentDuration = 24 * time.Hour
