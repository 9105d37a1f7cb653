package archive

import (
	"cmp"
	"container/heap"
	"math"
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

	// file is the file's base name in its folder when it is not named
	// by us (a mediamtx import); our own are named by stem (see name).
	file string
	// stem is the instant (Unix µs) our own file's name encodes: its
	// Start when recorded, which a scan may refine from the file's NTP
	// time.
	stem   int64
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

// name is the segment's file base name in its camera's folder.
func (s Segment) name() string {
	if s.file != "" {
		return s.file
	}
	return segmentFileName(time.UnixMicro(s.stem))
}

// entry is a Segment as the index holds it: 48 bytes and no pointers, so
// that a week of 100 cameras at 10 s segments (6 M entries) is 290 MB the
// garbage collector never scans, and loads as fast as its file is read.
type entry struct {
	start  int64 // Unix ns of Segment.Start
	dur    int64
	size   int64
	tracks uint64
	stem   int64
	src    int32
	// file is 0 for our own files (named by stem), else 1 + its index
	// in the camera's files (mediamtx folders' names).
	file int32
}

func (e entry) end() int64 { return e.start + e.dur }

// camIndex is one camera's entries, sorted by start, and the names of
// files named otherwise (mediamtx imports): rebuilt with the import's rescan.
type camIndex struct {
	segs  []entry
	files []string
	own   int // how many of segs are our own
}

func (c *camIndex) segment(e entry) Segment {
	s := Segment{Start: time.Unix(0, e.start).UTC(), Duration: time.Duration(e.dur), Size: e.size, tracks: e.tracks, stem: e.stem, src: int(e.src)}
	if e.file > 0 {
		s.file = c.files[e.file-1]
	}
	return s
}

// entryOf converts s (Start already truncated to the µs).
func (c *camIndex) entryOf(s Segment) entry {
	e := entry{start: s.Start.UnixNano(), dur: int64(s.Duration), size: s.Size, tracks: s.tracks, stem: s.stem, src: int32(s.src)}
	if s.file != "" {
		c.files = append(c.files, s.file)
		e.file = int32(len(c.files))
	}
	return e
}

// find is the position of start in the entries (and whether one starts there).
func (c *camIndex) find(start int64) (int, bool) {
	return slices.BinarySearchFunc(c.segs, start, func(e entry, t int64) int { return cmp.Compare(e.start, t) })
}

// index holds every camera's segments sorted by start time. One RWMutex:
// readers (playback, download) copy out what they need.
type index struct {
	mu   sync.RWMutex
	cams map[string]*camIndex
	// ownBytes is the size of all our own segments (retention's budget).
	ownBytes int64
	// persist, when set, records each segment of our own folder added
	// (a completed recording) in its camera's index file. Set once
	// before any writer runs.
	persist func(camera string, s Segment)
}

func newIndex() *index { return &index{cams: make(map[string]*camIndex)} }

// unixNanos is t in Unix ns, clamped to int64 (time.Time{} and maxTime
// are outside what UnixNano represents).
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

func (x *index) camLocked(camera string) *camIndex {
	c := x.cams[camera]
	if c == nil {
		c = &camIndex{}
		x.cams[camera] = c
	}
	return c
}

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
	c := x.camLocked(camera)
	e := c.entryOf(s)
	i, found := c.find(e.start)
	if found {
		x.account(c, c.segs[i], -1)
		c.segs[i] = e
	} else {
		c.segs = slices.Insert(c.segs, i, e)
	}
	x.account(c, e, 1)
	x.mu.Unlock()
	return s
}

// setCamera sets a camera's segments (sorted by start, our own folder's)
// at startup.
func (x *index) setCamera(camera string, segs []entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old := x.cams[camera]
	if old != nil {
		for _, e := range old.segs {
			x.account(old, e, -1)
		}
	}
	c := &camIndex{segs: segs}
	for _, e := range segs {
		x.account(c, e, 1)
	}
	x.cams[camera] = c
}

// account adds (sign 1) or takes off (-1) e, of camera c, in the counts
// of our own segments.
func (x *index) account(c *camIndex, e entry, sign int64) {
	if e.src == 0 {
		x.ownBytes += sign * e.size
		c.own += int(sign)
	}
}

func (x *index) remove(camera string, s Segment) {
	x.mu.Lock()
	defer x.mu.Unlock()
	c := x.cams[camera]
	if c == nil {
		return
	}
	if i, found := c.find(unixNanos(s.Start)); found && int(c.segs[i].src) == s.src {
		x.account(c, c.segs[i], -1)
		c.segs = slices.Delete(c.segs, i, i+1)
	}
}

// removeOwn drops our own segments starting at the given instants.
// Retention removes each camera's oldest: when they are the first
// entries, the list is cut at the front (no copy of the week behind
// them; the space is reclaimed when an append next grows it).
func (x *index) removeOwn(camera string, starts map[int64]bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	c := x.cams[camera]
	if c == nil {
		return
	}
	k := 0
	for k < len(c.segs) && k < len(starts) && c.segs[k].src == 0 && starts[c.segs[k].start] {
		x.account(c, c.segs[k], -1)
		k++
	}
	c.segs = c.segs[k:]
	if k == len(starts) {
		return
	}
	c.segs = slices.DeleteFunc(c.segs, func(e entry) bool {
		if e.src == 0 && starts[e.start] {
			x.account(c, e, -1)
			return true
		}
		return false
	})
}

// ownCount is how many of the camera's segments are our own.
func (x *index) ownCount(camera string) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if c := x.cams[camera]; c != nil {
		return c.own
	}
	return 0
}

// rangeOf returns (a copy of) the segments overlapping [start, end).
func (x *index) rangeOf(camera string, start, end time.Time) []Segment {
	from, to := unixNanos(start), unixNanos(end)
	x.mu.RLock()
	defer x.mu.RUnlock()
	c := x.cams[camera]
	if c == nil {
		return nil
	}
	i, _ := c.find(from)
	for i > 0 && c.segs[i-1].end() > from {
		i--
	}
	j := i
	for j < len(c.segs) && c.segs[j].start < to {
		j++
	}
	if i == j {
		return nil
	}
	out := make([]Segment, j-i)
	for k, e := range c.segs[i:j] {
		out[k] = c.segment(e)
	}
	return out
}

// lookup finds the segment starting exactly at start.
func (x *index) lookup(camera string, start time.Time) (Segment, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	c := x.cams[camera]
	if c == nil {
		return Segment{}, false
	}
	i, found := c.find(unixNanos(start))
	if !found {
		return Segment{}, false
	}
	return c.segment(c.segs[i]), true
}

// replaceSource swaps every segment of source src for segs (a rescan).
func (x *index) replaceSource(src int, segs map[string][]Segment) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for cam, c := range x.cams {
		if _, again := segs[cam]; !again && !slices.ContainsFunc(c.segs, func(e entry) bool { return int(e.src) == src }) {
			continue
		}
		// Rebuilt with its file names, so the names of files gone go too.
		kept := &camIndex{segs: make([]entry, 0, len(c.segs)+len(segs[cam])), own: c.own}
		for _, e := range c.segs {
			if int(e.src) != src {
				kept.segs = append(kept.segs, kept.entryOf(c.segment(e)))
			}
		}
		x.cams[cam] = kept
	}
	for cam, list := range segs {
		c := x.camLocked(cam)
		for _, s := range list {
			s.Start = s.Start.Truncate(time.Microsecond)
			c.segs = append(c.segs, c.entryOf(s))
		}
		slices.SortStableFunc(c.segs, func(a, b entry) int { return cmp.Compare(a.start, b.start) })
		// Our own recording wins over an import at the same instant (it
		// was in the list first), so ownBytes is unchanged.
		c.segs = slices.CompactFunc(c.segs, func(a, b entry) bool { return a.start == b.start })
	}
}

// ownView is the index as OwnSegments (the shared index's Sync).
type ownView struct{ x *index }

func (v ownView) Cameras() []string {
	v.x.mu.RLock()
	defer v.x.mu.RUnlock()
	var out []string
	for cam, c := range v.x.cams {
		if c.own > 0 {
			out = append(out, cam)
		}
	}
	return out
}

func (v ownView) Ends(camera string) (n int, first, last Segment) {
	v.x.mu.RLock()
	defer v.x.mu.RUnlock()
	c := v.x.cams[camera]
	if c == nil || c.own == 0 {
		return 0, Segment{}, Segment{}
	}
	j := len(c.segs) - 1
	for c.segs[j].src != 0 {
		j--
	}
	return c.own, c.segment(c.segs[c.nextOwn(0)]), c.segment(c.segs[j])
}

func (v ownView) All(camera string) []Segment {
	v.x.mu.RLock()
	defer v.x.mu.RUnlock()
	c := v.x.cams[camera]
	if c == nil {
		return nil
	}
	var out []Segment
	for _, e := range c.segs {
		if e.src == 0 {
			out = append(out, c.segment(e))
		}
	}
	return out
}

// expired lists, oldest first, our own segments retention deletes: those
// that ended before horizon, then the oldest while our segments exceed
// maxBytes (0: no budget); and the bytes of all our segments. It walks
// each camera's oldest entries only (a week of 100 cameras is 6 M).
func (x *index) expired(horizon time.Time, maxBytes int64) (cams []string, segs []Segment, total int64) {
	before := unixNanos(horizon)
	x.mu.RLock()
	defer x.mu.RUnlock()
	total = x.ownBytes
	var h oldestHeap
	for cam, c := range x.cams {
		if k := c.nextOwn(0); k < len(c.segs) {
			h = append(h, cursor{cam: cam, c: c, i: k})
		}
	}
	heap.Init(&h)
	left := total
	for len(h) > 0 {
		cur := &h[0]
		e := cur.c.segs[cur.i]
		if e.end() >= before && (maxBytes <= 0 || left <= maxBytes) {
			break
		}
		cams = append(cams, cur.cam)
		segs = append(segs, cur.c.segment(e))
		left -= e.size
		if cur.i = cur.c.nextOwn(cur.i + 1); cur.i < len(cur.c.segs) {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return cams, segs, total
}

// nextOwn is the position of the first of our own entries from i on.
func (c *camIndex) nextOwn(i int) int {
	for i < len(c.segs) && c.segs[i].src != 0 {
		i++
	}
	return i
}

// cursor is a camera's oldest own entry not yet listed by expired.
type cursor struct {
	cam string
	c   *camIndex
	i   int
}

// oldestHeap orders cursors by the start of their entry (container/heap).
type oldestHeap []cursor

func (h oldestHeap) Len() int           { return len(h) }
func (h oldestHeap) Less(i, j int) bool { return h[i].c.segs[h[i].i].start < h[j].c.segs[h[j].i].start }
func (h oldestHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *oldestHeap) Push(v any)        { *h = append(*h, v.(cursor)) }
func (h *oldestHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}
