package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// trackRun is one trun of a segment with absolute file offsets.
type trackRun struct {
	trackID    int
	base       uint64
	dataOffset int64
	entries    []trunEntry
}

// trunEntry is one sample of a trun, defaults from tfhd applied.
type trunEntry struct {
	dur, size, flags uint32
	cts              int32
}

type sampleTables struct {
	fileSize    int64 // of the segment: every run's samples lie in it
	tracks      []initInfo
	hdr         []byte // ftyp+moov: the download copies its trak boxes
	fingerprint uint64
	runs        []trackRun
	entries     []trunEntry // backing store of every run's entries
}

// maxTrunSamples bounds one trun (a fragment of a second or two holds a few
// hundred samples): a corrupt count must not allocate gigabytes. A
// segment's truns together hold at most one sample per byte of the file:
// samples of default size take no room in the moof, so without that bound
// a few kilobytes of truns could claim a billion of them.
const maxTrunSamples = 1 << 20

// tableWindow is how much of a segment is read at once while its moofs are
// parsed: a moof and the header of the mdat behind it usually come in one
// read, so a fragment costs one pread however large its mdat.
const tableWindow = 4 << 10

// boxWindow reads a file's boxes through one reusable buffer.
type boxWindow struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	off  int64 // file offset of buf[0]
}

// bytes returns n bytes at off, valid until the next call.
func (w *boxWindow) bytes(off, n int64) ([]byte, error) {
	if off >= w.off && off+n <= w.off+int64(len(w.buf)) {
		return w.buf[off-w.off : off-w.off+n], nil
	}
	want := min(max(n, tableWindow), w.size-off)
	if want < n {
		return nil, errPartial
	}
	if int64(cap(w.buf)) < want {
		w.buf = make([]byte, want)
	}
	w.buf = w.buf[:want]
	m, err := w.r.ReadAt(w.buf, off)
	if int64(m) < n {
		w.buf = w.buf[:0]
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	w.buf, w.off = w.buf[:m], off
	return w.buf[:n], nil
}

func (w *boxWindow) box(off int64) (box, error) {
	h, err := w.bytes(off, min(16, w.size-off))
	if err != nil || len(h) < 8 {
		return box{}, errPartial
	}
	return parseBoxHeader(h, off, w.size)
}

// readSampleTables reads a segment's init and every moof (never an mdat)
// through w. It reuses prev's entries: prev's runs are no longer valid.
func readSampleTables(w *boxWindow, prev *sampleTables) (*sampleTables, error) {
	size := w.size
	moov, err := w.box(0)
	if err != nil {
		return nil, err
	}
	for moov.typ != "moov" {
		if moov, err = w.box(moov.end()); err != nil {
			return nil, err
		}
	}
	if moov.end() > maxInitSize {
		return nil, errors.New("moov too large")
	}
	b, err := w.bytes(0, moov.end())
	if err != nil {
		return nil, err
	}
	st := &sampleTables{fileSize: size, fingerprint: tracksFingerprint(b)}
	if prev != nil {
		st.entries = prev.entries[:0]
		prev.runs, prev.entries = nil, nil
	}
	if prev != nil && prev.fingerprint == st.fingerprint {
		st.tracks, st.hdr = prev.tracks, prev.hdr // consecutive segments of one recording share their init
	} else {
		st.hdr = append([]byte(nil), b...)
		if st.tracks, err = initTracks(st.hdr); err != nil {
			return nil, err
		}
	}
	for off := moov.end(); off < size; {
		b, err := w.box(off)
		if err != nil {
			return nil, err
		}
		off = b.end()
		if b.typ != "moof" {
			continue
		}
		moof, err := w.bytes(b.off, b.size)
		if err != nil {
			return nil, err
		}
		if err := st.addMoof(moof, b.off); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// addMoof parses a moof by hand: it is on the download path for every
// fragment, and the reflective box decoder costs more than the copy.
func (st *sampleTables) addMoof(moof []byte, moofOff int64) error {
	for off := int64(8); off < int64(len(moof)); {
		traf, err := boxAt(moof, off)
		if err != nil {
			return fmt.Errorf("moof: %w", err)
		}
		off = traf.end()
		if traf.typ != "traf" {
			continue
		}
		if err := st.addTraf(moof[:traf.end()], traf, moofOff); err != nil {
			return err
		}
	}
	return nil
}

var errBadTraf = errors.New("malformed traf")

func (st *sampleTables) addTraf(b []byte, traf box, moofOff int64) error {
	var cur trackRun
	var baseOff int64 // base data offset: a trun's data_offset is relative to it
	var defDur, defSize, defFlags uint32
	be := binary.BigEndian
	for off := traf.off + 8; off < traf.end(); {
		c, err := boxAt(b, off)
		if err != nil {
			return errBadTraf
		}
		off = c.end()
		p := b[c.off+8 : c.end()]
		if len(p) < 4 {
			return errBadTraf
		}
		version, flags := p[0], be.Uint32(p[0:4])&0xffffff
		p = p[4:]
		switch c.typ {
		case "tfhd":
			if len(p) < 4 {
				return errBadTraf
			}
			cur = trackRun{trackID: int(be.Uint32(p)), dataOffset: moofOff}
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
					return errBadTraf
				}
				switch {
				case f.bit == 0x01:
					baseOff = int64(be.Uint64(p))
					cur.dataOffset = baseOff
				case f.into != nil:
					*f.into = be.Uint32(p)
				}
				p = p[f.n:]
			}
		case "tfdt":
			if version == 1 && len(p) >= 8 {
				cur.base = be.Uint64(p)
			} else if len(p) >= 4 {
				cur.base = uint64(be.Uint32(p))
			}
		case "trun":
			r, err := st.parseTrun(p, version, flags, cur, baseOff, defDur, defSize, defFlags)
			if err != nil {
				return err
			}
			st.runs = append(st.runs, r)
			// A second trun of the traf continues where this one ends.
			cur.dataOffset = r.dataOffset
			for _, e := range r.entries {
				cur.dataOffset += int64(e.size)
				cur.base += uint64(e.dur)
			}
		}
	}
	return nil
}

// parseTrun reads one trun; without a data_offset its data follows the
// previous run's (cur.dataOffset), with one it is relative to baseOff.
func (st *sampleTables) parseTrun(p []byte, version byte, flags uint32, cur trackRun, baseOff int64, defDur, defSize, defFlags uint32) (trackRun, error) {
	be := binary.BigEndian
	if len(p) < 4 {
		return cur, errBadTraf
	}
	n := int(be.Uint32(p))
	p = p[4:]
	if flags&0x01 != 0 {
		if len(p) < 4 {
			return cur, errBadTraf
		}
		cur.dataOffset = baseOff + int64(int32(be.Uint32(p)))
		p = p[4:]
	}
	firstFlags, hasFirst := uint32(0), flags&0x04 != 0
	if hasFirst {
		if len(p) < 4 {
			return cur, errBadTraf
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
	if n < 0 || n > maxTrunSamples || len(p) < n*per {
		return cur, errBadTraf
	}
	if int64(len(st.entries))+int64(n) > st.fileSize {
		return cur, fmt.Errorf("%w: %d more samples in a %d-byte file", errBadTraf, n, st.fileSize)
	}
	first := len(st.entries)
	st.entries = slices.Grow(st.entries, n)[:first+n]
	cur.entries = st.entries[first : first+n : first+n]
	for i := range cur.entries {
		e := trunEntry{dur: defDur, size: defSize, flags: defFlags}
		if i == 0 && hasFirst {
			e.flags = firstFlags
		}
		if flags&0x100 != 0 {
			e.dur, p = be.Uint32(p), p[4:]
		}
		if flags&0x200 != 0 {
			e.size, p = be.Uint32(p), p[4:]
		}
		if flags&0x400 != 0 {
			e.flags, p = be.Uint32(p), p[4:]
		}
		if flags&0x800 != 0 {
			v := be.Uint32(p)
			p = p[4:]
			if version == 0 {
				e.cts = int32(min(v, 1<<31-1))
			} else {
				e.cts = int32(v)
			}
		}
		cur.entries[i] = e
	}
	end := cur.dataOffset
	for _, e := range cur.entries {
		end += int64(e.size) // at most 2^52 past an offset within the file: no overflow
	}
	if cur.dataOffset < 0 || cur.dataOffset > st.fileSize || end > st.fileSize {
		return cur, fmt.Errorf("%w: trun data at [%d, %d) of a %d-byte file", errBadTraf, cur.dataOffset, end, st.fileSize)
	}
	return cur, nil
}
