package archive

import (
	"fmt"
	"os"
)

// keepOpen is how many segment files stay open from reading their tables
// to sending their payloads: it saves reopening them for short downloads
// (and retention cannot take them away meanwhile) without holding
// hundreds of descriptors for long ones.
const keepOpen = 16

// segmentFiles opens the download's segment files through one os.Root per
// camera folder: one openat per file instead of a walk from the archive root.
type segmentFiles struct {
	roots  []*os.Root // Store.roots
	camera string
	segs   []Segment
	dirs   []*os.Root // camera folder per source, opened on first use
	files  []*os.File // per segment, nil when closed
	open   int        // files not nil
}

// get returns segment i's file, opening it when needed.
func (s *segmentFiles) get(i int) (*os.File, error) {
	if f := s.files[i]; f != nil {
		return f, nil
	}
	sg := s.segs[i]
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
	f, err := s.dirs[sg.src].Open(sg.name)
	if err != nil {
		return nil, fmt.Errorf("archive: open segment %s of %s: %w", sg.ID(), s.camera, err)
	}
	s.files[i] = f
	s.open++
	return f, nil
}

// keep leaves file i open for later unless keepOpen files already are.
func (s *segmentFiles) keep(i int) {
	if s.open > keepOpen {
		s.release(i)
	}
}

func (s *segmentFiles) release(i int) {
	if s.files[i] != nil {
		s.files[i].Close()
		s.files[i] = nil
		s.open--
	}
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
