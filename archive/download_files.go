package archive

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// keepOpen is how many segment files stay open from reading their tables
// to sending their payloads: it saves reopening them for short downloads
// (and retention cannot take them away meanwhile) without holding
// hundreds of descriptors for long ones.
const keepOpen = 16

// keepHeld bounds the bytes of segments held by other nodes kept in memory
// from reading their tables to sending their payloads; past it they are
// fetched again for the payloads.
const keepHeld = 32 << 20

// segmentFiles opens the download's segment files through one os.Root per
// camera folder: one openat per file instead of a walk from the archive
// root. A segment another node holds is read whole from it (readHeld).
type segmentFiles struct {
	roots    []*os.Root // Store.roots
	camera   string
	segs     []Segment
	readHeld func(Segment) ([]byte, error)
	dirs     []*os.Root    // camera folder per source, opened on first use
	files    []io.ReaderAt // per segment (*os.File or *bytes.Reader), nil when closed
	open     int           // own files not nil
	held     int64         // bytes of held segments in files
}

// get returns segment i's reader, opening (or fetching) it when needed.
func (s *segmentFiles) get(i int) (io.ReaderAt, error) {
	if f := s.files[i]; f != nil {
		return f, nil
	}
	sg := s.segs[i]
	if sg.node != "" {
		b, err := s.readHeld(sg)
		if err != nil {
			return nil, err
		}
		s.files[i] = bytes.NewReader(b)
		s.held += sg.Size
		return s.files[i], nil
	}
	if s.dirs == nil {
		s.dirs = make([]*os.Root, len(s.roots))
	}
	if s.dirs[sg.src] == nil {
		dir, err := s.roots[sg.src].OpenRoot(s.camera)
		if err != nil {
			return nil, fmt.Errorf("archive: open folder of %s: %w", s.camera, err)
		}
		s.dirs[sg.src] = dir
	}
	f, err := s.dirs[sg.src].Open(sg.name())
	if err != nil {
		return nil, fmt.Errorf("archive: open segment %s of %s: %w", sg.ID(), s.camera, err)
	}
	s.files[i] = f
	s.open++
	return f, nil
}

// keep leaves file i open for later unless keepOpen files (or keepHeld
// bytes of held segments) already are.
func (s *segmentFiles) keep(i int) {
	if s.open > keepOpen || s.held > keepHeld {
		s.release(i)
	}
}

func (s *segmentFiles) release(i int) {
	switch f := s.files[i].(type) {
	case *os.File:
		f.Close()
		s.open--
	case *bytes.Reader:
		s.held -= s.segs[i].Size
	}
	s.files[i] = nil
}

func (s *segmentFiles) close() {
	for i := range s.files {
		s.release(i)
	}
	for i, d := range s.dirs {
		if d != nil {
			d.Close()
			s.dirs[i] = nil
		}
	}
}
