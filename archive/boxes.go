package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"time"

	amp4 "github.com/abema/go-mp4"
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
	var lastMoof box
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
			lastMoof = b
			sc.parts++
			off = mdat.end()
		} else {
			off = b.end()
		}
		sc.validLen = off
	}
	if sc.parts == 0 {
		return sc, nil
	}
	moof := make([]byte, lastMoof.size)
	if _, err := r.ReadAt(moof, lastMoof.off); err != nil {
		return sc, err
	}
	sc.duration, err = moofEnd(moof, init)
	return sc, err
}

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

// moofEnd returns the latest sample end time among a moof's tracks.
func moofEnd(moof []byte, init *fmp4.Init) (time.Duration, error) {
	var end time.Duration
	var track *fmp4.InitTrack
	var base uint64
	var defDur uint32
	_, err := amp4.ReadBoxStructure(bytes.NewReader(moof), func(h *amp4.ReadHandle) (any, error) {
		switch h.BoxInfo.Type.String() {
		case "moof", "traf":
			return h.Expand()
		case "tfhd":
			bx, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			tfhd := bx.(*amp4.Tfhd)
			track = initTrack(init, int(tfhd.TrackID))
			defDur = tfhd.DefaultSampleDuration
		case "tfdt":
			bx, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			tfdt := bx.(*amp4.Tfdt)
			base = tfdt.GetBaseMediaDecodeTime()
		case "trun":
			bx, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			if track == nil {
				return nil, errors.New("trun of an unknown track")
			}
			trun := bx.(*amp4.Trun)
			t := base
			for _, e := range trun.Entries {
				d := e.SampleDuration
				if trun.Flags[1]&0x01 == 0 { // sample-duration-present (0x100)
					d = defDur
				}
				t += uint64(d)
			}
			end = max(end, ticksToDuration(int64(t), track.TimeScale))
		}
		return nil, nil
	})
	return end, err
}
