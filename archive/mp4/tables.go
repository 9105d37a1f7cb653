package mp4

import (
	"errors"
)

// sampleTables is what the download reads of one segment: its init and
// the runs of its moofs (FileSize is the segment's: every run's samples lie
// in it).
type sampleTables struct {
	Fragments
	tracks      []initInfo
	hdr         []byte // ftyp+moov: the download copies its trak boxes
	fingerprint uint64
}

// readSampleTables reads a segment's init and every moof (never an mdat)
// through w. It reuses prev's entries: prev's runs are no longer valid.
func readSampleTables(w *Window, prev *sampleTables) (*sampleTables, error) {
	size := w.Size()
	moov, err := w.Box(0)
	if err != nil {
		return nil, err
	}
	for moov.Type != "moov" {
		if moov, err = w.Box(moov.End()); err != nil {
			return nil, err
		}
	}
	if moov.End() > MaxInitSize {
		return nil, errors.New("moov too large")
	}
	b, err := w.Bytes(0, moov.End())
	if err != nil {
		return nil, err
	}
	st := &sampleTables{Fragments: Fragments{FileSize: size}, fingerprint: TracksFingerprint(b)}
	if prev != nil {
		st.Entries = prev.Entries[:0]
		prev.Runs, prev.Entries = nil, nil
	}
	if prev != nil && prev.fingerprint == st.fingerprint {
		st.tracks, st.hdr = prev.tracks, prev.hdr // consecutive segments of one recording share their init
	} else {
		st.hdr = append([]byte(nil), b...)
		if st.tracks, err = initTracks(st.hdr); err != nil {
			return nil, err
		}
	}
	for off := moov.End(); off < size; {
		b, err := w.Box(off)
		if err != nil {
			return nil, err
		}
		off = b.End()
		if b.Type != "moof" {
			continue
		}
		moof, err := w.Bytes(b.Off, b.Size)
		if err != nil {
			return nil, err
		}
		if err := st.AddMoof(moof, b.Off); err != nil {
			return nil, err
		}
	}
	return st, nil
}
