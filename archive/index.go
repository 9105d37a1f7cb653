package archive

import (
	"slices"
	"sync"
	"time"
)

// Segment is one indexed recording segment.
type Segment struct {
	// Start is the wall-clock time of the segment's first sample
	// (microsecond precision, as in its name).
	Start time.Time
	// Duration is what the complete part of the file covers.
	Duration time.Duration
	// Size is the served (complete) length of the file in bytes.
	Size int64

	name   string // file base name in its folder
	tracks uint64 // fingerprint of the init's tracks: a change needs a new EXT-X-MAP
	src    int    // 0: our own folder; i > 0: Store.Imports[i-1] (read-only)
	node   string // "": this node's; otherwise the cluster node holding it (shared index)
}

// Node is the cluster node that holds the segment, "" for this node.
func (s Segment) Node() string { return s.node }

// End is Start + Duration.
func (s Segment) End() time.Time { return s.Start.Add(s.Duration) }

// ID is the segment's name in URLs: its UTC start time.
func (s Segment) ID() string { return SegmentName(s.Start) }

// index holds every camera's segments sorted by start time. One RWMutex:
// readers (playback, download) copy out what they need.
type index struct {
	mu   sync.RWMutex
	cams map[string][]Segment
	// persist, when set, records each segment of our own folder added
	// (a completed recording) in its camera's index file. Set once
	// before any writer runs.
	persist func(camera string, s Segment)
}

func newIndex() *index { return &index{cams: make(map[string][]Segment)} }

func cmpSegment(a, b Segment) int { return a.Start.Compare(b.Start) }

// add inserts or replaces (same start) a segment, recording it in the
// camera's index file (persist).
func (x *index) add(camera string, s Segment) {
	s = x.put(camera, s)
	if x.persist != nil && s.src == 0 {
		x.persist(camera, s)
	}
}

// put is add without persist.
func (x *index) put(camera string, s Segment) Segment {
	s.Start = s.Start.Truncate(time.Microsecond)
	x.mu.Lock()
	segs := x.cams[camera]
	i, found := slices.BinarySearchFunc(segs, s, cmpSegment)
	if found {
		segs[i] = s
	} else {
		x.cams[camera] = slices.Insert(segs, i, s)
	}
	x.mu.Unlock()
	return s
}

// setCamera sets a camera's segments (sorted by start) at startup.
func (x *index) setCamera(camera string, segs []Segment) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cams[camera] = segs
}

func (x *index) remove(camera string, s Segment) {
	x.mu.Lock()
	defer x.mu.Unlock()
	segs := x.cams[camera]
	if i, found := slices.BinarySearchFunc(segs, s, cmpSegment); found && segs[i].src == s.src {
		x.cams[camera] = slices.Delete(segs, i, i+1)
	}
}

// rangeOf returns (a copy of) the segments overlapping [start, end).
func (x *index) rangeOf(camera string, start, end time.Time) []Segment {
	x.mu.RLock()
	defer x.mu.RUnlock()
	segs := x.cams[camera]
	i, _ := slices.BinarySearchFunc(segs, start, func(s Segment, t time.Time) int { return s.Start.Compare(t) })
	for i > 0 && segs[i-1].End().After(start) {
		i--
	}
	j := i
	for j < len(segs) && segs[j].Start.Before(end) {
		j++
	}
	return slices.Clone(segs[i:j])
}

// lookup finds the segment starting exactly at start.
func (x *index) lookup(camera string, start time.Time) (Segment, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	segs := x.cams[camera]
	i, found := slices.BinarySearchFunc(segs, Segment{Start: start}, cmpSegment)
	if !found {
		return Segment{}, false
	}
	return segs[i], true
}

// replaceSource swaps every segment of source src for segs (a rescan).
func (x *index) replaceSource(src int, segs map[string][]Segment) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for cam, list := range x.cams {
		x.cams[cam] = slices.DeleteFunc(list, func(s Segment) bool { return s.src == src })
	}
	for cam, list := range segs {
		merged := append(x.cams[cam], list...)
		slices.SortStableFunc(merged, cmpSegment)
		// Our own recording wins over an import at the same instant.
		x.cams[cam] = slices.CompactFunc(merged, func(a, b Segment) bool { return a.Start.Equal(b.Start) })
	}
}

// ownByCamera lists our own segments per camera.
func (x *index) ownByCamera() map[string][]Segment {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[string][]Segment)
	for cam, list := range x.cams {
		for _, s := range list {
			if s.src == 0 {
				out[cam] = append(out[cam], s)
			}
		}
	}
	return out
}

// own lists our own segments (oldest first) with their cameras, for retention.
func (x *index) own() (cams []string, segs []Segment) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for cam, list := range x.cams {
		for _, s := range list {
			if s.src == 0 {
				cams = append(cams, cam)
				segs = append(segs, s)
			}
		}
	}
	return cams, segs
}
