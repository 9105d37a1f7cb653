package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/camgate/camgate/archive/mp4"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// segmentScan is what the index learns from a segment file.
type segmentScan struct {
	initLen  int64         // ftyp + moov
	validLen int64         // end of the last complete fragment
	parts    int           // complete fragments
	duration time.Duration // end of the last complete fragment
	ntp      time.Time     // start time from mediamtx's mtxi mp4.Box, if any
	tracks   uint64        // fingerprint of the track descriptions
}

// scanSegment walks a segment's boxes: it finds the complete prefix (the
// init and every whole moof+mdat pair) and the duration it covers. A partial
// or foreign tail is left out of validLen.
func scanSegment(r io.ReaderAt, size int64) (segmentScan, error) {
	var sc segmentScan
	off := int64(0)
	for sc.initLen == 0 {
		b, err := mp4.ReadAt(r, off, size)
		if err != nil {
			return sc, fmt.Errorf("no complete moov: %w", err)
		}
		if off == 0 && b.Type != "ftyp" {
			return sc, errors.New("not an MP4 file (no ftyp)")
		}
		off = b.End()
		if b.Type == "moov" {
			sc.initLen = off
		}
	}
	if sc.initLen > mp4.MaxInitSize {
		return sc, errors.New("moov too large")
	}
	hdr := make([]byte, sc.initLen)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return sc, err
	}
	sc.tracks = mp4.TracksFingerprint(hdr)
	init, ntp, err := parseInit(hdr)
	if err != nil {
		return sc, err
	}
	sc.ntp = ntp
	sc.validLen = sc.initLen
	fr := &mp4.Fragments{FileSize: size}
	var moof []byte
	samples := 0
	for off < size {
		b, err := mp4.ReadAt(r, off, size)
		if err != nil {
			break
		}
		if b.Type == "moof" {
			mdat, err := mp4.ReadAt(r, b.End(), size)
			if err != nil || mdat.Type != "mdat" {
				break
			}
			if b.Size > maxMoofSize {
				return sc, fmt.Errorf("moof at %d: %d bytes, at most %d", b.Off, b.Size, maxMoofSize)
			}
			moof = slices.Grow(moof[:0], int(b.Size))[:b.Size]
			if _, err := r.ReadAt(moof, b.Off); err != nil {
				return sc, err
			}
			// Not wrapped: a malformed fragment is not a partial write
			// (scanFile deletes what mp4.ErrPartial marks).
			fr.Reset()
			if err := fr.AddMoof(moof, b.Off); err != nil {
				return sc, fmt.Errorf("fragment at %d: %v", b.Off, err)
			}
			if sc.duration, err = runsEnd(fr.Runs, init); err != nil {
				return sc, fmt.Errorf("fragment at %d: %v", b.Off, err)
			}
			samples += len(fr.Entries)
			sc.parts++
			off = mdat.End()
		} else {
			off = b.End()
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
	ftyp, err := mp4.At(b, 0)
	if err != nil {
		return nil, ntp, err
	}
	moov, err := mp4.At(b, ftyp.End())
	if err != nil || moov.Type != "moov" {
		return nil, ntp, errors.New("no moov after ftyp")
	}
	for off := moov.Off + 8; off < moov.End(); {
		c, err := mp4.At(b[:moov.End()], off)
		if err != nil {
			break
		}
		if c.Type == "udta" {
			for u := c.Off + 8; u < c.End(); {
				m, err := mp4.At(b[:c.End()], u)
				if err != nil {
					break
				}
				// mtxi: fullbox 4, stream id 16, segment number 8, dts 8, ntp 8
				if m.Type == "mtxi" && m.Size >= 52 {
					ntp = time.Unix(0, int64(binary.BigEndian.Uint64(b[m.Off+44:m.Off+52]))).UTC()
				}
				u = m.End()
			}
			copy(b[c.Off+4:c.Off+8], "free")
		}
		off = c.End()
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b[:moov.End()])); err != nil {
		return nil, ntp, fmt.Errorf("init: %w", err)
	}
	return &init, ntp, nil
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
func runsEnd(runs []mp4.Run, init *fmp4.Init) (time.Duration, error) {
	var end time.Duration
	for _, r := range runs {
		track := initTrack(init, r.TrackID)
		if track == nil || track.TimeScale == 0 {
			return 0, fmt.Errorf("trun of track %d, which the moov does not have (or has no timescale)", r.TrackID)
		}
		t := r.Base
		for _, e := range r.Entries {
			t += uint64(e.Dur) // at most 2^52 more: no overflow past a sane base
		}
		if t/uint64(track.TimeScale) > uint64(maxSegmentDuration/time.Second) {
			return 0, fmt.Errorf("track %d ends %d s into the segment: more than %v", r.TrackID, t/uint64(track.TimeScale), maxSegmentDuration)
		}
		end = max(end, mp4.FromTicks(int64(t), track.TimeScale))
	}
	return end, nil
}

// maxSegmentDuration bounds what a segment may cover: mediamtx cuts
// segments every hour by default; a day is a lie of its tfdt or durations.
const maxSegmentDuration = 24 * time.Hour
