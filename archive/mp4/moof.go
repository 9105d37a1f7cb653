package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Run is one trun of a segment with absolute file offsets.
type Run struct {
	TrackID    int
	Base       uint64 // decode time of the first sample (tfdt plus earlier runs)
	DataOffset int64  // file offset of the first sample's bytes
	Entries    []Entry
}

// Entry is one sample of a trun, defaults from tfhd applied.
type Entry struct {
	Dur, Size, Flags uint32
	CTS              int32
}

// FlagNonSync is sample_is_non_sync_sample in an Entry's Flags.
const FlagNonSync = 1 << 16

// MaxTrunSamples bounds one trun (a fragment of a second or two holds a few
// hundred samples): a corrupt count must not allocate gigabytes. A
// segment's truns together hold at most one sample per byte of the file:
// samples of default size take no room in the moof, so without that bound
// a few kilobytes of truns could claim a billion of them.
const MaxTrunSamples = 1 << 20

// ErrBadTraf is returned for a traf whose boxes do not parse.
var ErrBadTraf = errors.New("malformed traf")

// Fragments accumulates the runs of a segment's moofs. Every run's samples
// must lie within FileSize bytes.
type Fragments struct {
	FileSize int64
	Runs     []Run
	Entries  []Entry // backing store of every run's entries
}

// Reset forgets the runs and keeps the storage.
func (fr *Fragments) Reset() { fr.Runs, fr.Entries = fr.Runs[:0], fr.Entries[:0] }

// AddMoof parses a moof by hand (moof holds the whole box, moofOff is its
// offset in the file): it is on the download path for every fragment, and
// the reflective box decoder costs more than the copy.
func (fr *Fragments) AddMoof(moof []byte, moofOff int64) error {
	for off := int64(8); off < int64(len(moof)); {
		traf, err := At(moof, off)
		if err != nil {
			return fmt.Errorf("moof: %w", err)
		}
		off = traf.End()
		if traf.Type != "traf" {
			continue
		}
		if err := fr.addTraf(moof[:traf.End()], traf, moofOff); err != nil {
			return err
		}
	}
	return nil
}

func (fr *Fragments) addTraf(b []byte, traf Box, moofOff int64) error {
	var cur Run
	var baseOff int64 // base data offset: a trun's data_offset is relative to it
	var defDur, defSize, defFlags uint32
	be := binary.BigEndian
	for off := traf.Off + 8; off < traf.End(); {
		c, err := At(b, off)
		if err != nil {
			return ErrBadTraf
		}
		off = c.End()
		p := b[c.Off+8 : c.End()]
		if len(p) < 4 {
			return ErrBadTraf
		}
		version, flags := p[0], be.Uint32(p[0:4])&0xffffff
		p = p[4:]
		switch c.Type {
		case "tfhd":
			if len(p) < 4 {
				return ErrBadTraf
			}
			cur = Run{TrackID: int(be.Uint32(p)), DataOffset: moofOff}
			baseOff = moofOff
			p = p[4:]
			for _, f := range []struct {
				bit  uint32
				n    int
				into *uint32
			}{{0x01, 8, nil}, {0x02, 4, nil}, {0x08, 4, &defDur}, {0x10, 4, &defSize}, {0x20, 4, &defFlags}} {
				if flags&f.bit == 0 {
					continue
				}
				if len(p) < f.n {
					return ErrBadTraf
				}
				switch {
				case f.bit == 0x01:
					baseOff = int64(be.Uint64(p))
					cur.DataOffset = baseOff
				case f.into != nil:
					*f.into = be.Uint32(p)
				}
				p = p[f.n:]
			}
		case "tfdt":
			if version == 1 && len(p) >= 8 {
				cur.Base = be.Uint64(p)
			} else if len(p) >= 4 {
				cur.Base = uint64(be.Uint32(p))
			}
		case "trun":
			r, err := fr.parseTrun(p, version, flags, cur, baseOff, defDur, defSize, defFlags)
			if err != nil {
				return err
			}
			fr.Runs = append(fr.Runs, r)
			// A second trun of the traf continues where this one ends.
			cur.DataOffset = r.DataOffset
			for _, e := range r.Entries {
				cur.DataOffset += int64(e.Size)
				cur.Base += uint64(e.Dur)
			}
		}
	}
	return nil
}

// parseTrun reads one trun; without a data_offset its data follows the
// previous run's (cur.DataOffset), with one it is relative to baseOff.
func (fr *Fragments) parseTrun(p []byte, version byte, flags uint32, cur Run, baseOff int64, defDur, defSize, defFlags uint32) (Run, error) {
	be := binary.BigEndian
	if len(p) < 4 {
		return cur, ErrBadTraf
	}
	n := int(be.Uint32(p))
	p = p[4:]
	if flags&0x01 != 0 {
		if len(p) < 4 {
			return cur, ErrBadTraf
		}
		cur.DataOffset = baseOff + int64(int32(be.Uint32(p)))
		p = p[4:]
	}
	firstFlags, hasFirst := uint32(0), flags&0x04 != 0
	if hasFirst {
		if len(p) < 4 {
			return cur, ErrBadTraf
		}
		firstFlags = be.Uint32(p)
		p = p[4:]
	}
	per := 0
	for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
		if flags&bit != 0 {
			per += 4
		}
	}
	if n < 0 || n > MaxTrunSamples || len(p) < n*per {
		return cur, ErrBadTraf
	}
	if int64(len(fr.Entries))+int64(n) > fr.FileSize {
		return cur, fmt.Errorf("%w: %d more samples in a %d-byte file", ErrBadTraf, n, fr.FileSize)
	}
	first := len(fr.Entries)
	fr.Entries = slices.Grow(fr.Entries, n)[:first+n]
	cur.Entries = fr.Entries[first : first+n : first+n]
	for i := range cur.Entries {
		e := Entry{Dur: defDur, Size: defSize, Flags: defFlags}
		if i == 0 && hasFirst {
			e.Flags = firstFlags
		}
		if flags&0x100 != 0 {
			e.Dur, p = be.Uint32(p), p[4:]
		}
		if flags&0x200 != 0 {
			e.Size, p = be.Uint32(p), p[4:]
		}
		if flags&0x400 != 0 {
			e.Flags, p = be.Uint32(p), p[4:]
		}
		if flags&0x800 != 0 {
			v := be.Uint32(p)
			p = p[4:]
			if version == 0 {
				e.CTS = int32(min(v, 1<<31-1))
			} else {
				e.CTS = int32(v)
			}
		}
		cur.Entries[i] = e
	}
	end := cur.DataOffset
	for _, e := range cur.Entries {
		end += int64(e.Size) // at most 2^52 past an offset within the file: no overflow
	}
	if cur.DataOffset < 0 || cur.DataOffset > fr.FileSize || end > fr.FileSize {
		return cur, fmt.Errorf("%w: trun data at [%d, %d) of a %d-byte file", ErrBadTraf, cur.DataOffset, end, fr.FileSize)
	}
	return cur, nil
}
