package archive

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Each camera folder of our own archive holds a persisted index, so that
// a restart does not open and scan every segment file (a week of 10 s
// segments is 60 480 files per camera). validName refuses a leading dot,
// so the name can never be a camera, object or segment.
const indexFileName = ".index"

// The file is a header then fixed-size records appended as segments
// complete. Each record carries its own CRC: a torn last record (a crash
// mid-append) is ignored, a bad record before the last makes the whole
// file untrusted (the camera is scanned in full and the file rewritten).
//
//	header: "CGIX" version(uint32 LE) = 8 bytes
//	record: name µs, start ns, duration ns, size, tracks (int64/uint64 LE),
//	        reserved uint32 (0), crc32 IEEE of the 44 bytes before
const (
	indexMagic      = "CGIX"
	indexVersion    = 1
	indexHeaderSize = 8
	indexRecordSize = 48
)

// indexRecord is one persisted segment: the start its name encodes (the
// name is SegmentName of it) and what the scan found.
type indexRecord struct {
	name     int64 // Unix µs of the name
	start    int64 // Unix ns of Segment.Start
	duration time.Duration
	size     int64
	tracks   uint64
}

var errIndexFile = errors.New("archive: corrupt index file")

// recordOf is the record of one of our own segments (named by its stem).
func recordOf(s Segment) indexRecord {
	return indexRecord{name: s.stem, start: s.Start.UnixNano(), duration: s.Duration, size: s.Size, tracks: s.tracks}
}

func appendIndexHeader(b []byte) []byte {
	b = append(b, indexMagic...)
	return binary.LittleEndian.AppendUint32(b, indexVersion)
}

func appendIndexRecord(b []byte, r indexRecord) []byte {
	at := len(b)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.name))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.start))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.duration))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.size))
	b = binary.LittleEndian.AppendUint64(b, r.tracks)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b[at:]))
}

// parseIndexFile decodes an index file (untrusted: it is read from disk).
// It returns the records in file order (a later record of the same name
// replaces an earlier one) and whether a torn tail was ignored.
func parseIndexFile(b []byte) ([]indexRecord, bool, error) {
	return decodeIndexFile(b, func(r indexRecord) indexRecord { return r })
}

// decodeIndexFile is parseIndexFile returning conv of each record: the
// loader decodes straight into index entries.
func decodeIndexFile[T any](b []byte, conv func(indexRecord) T) ([]T, bool, error) {
	if len(b) < indexHeaderSize || string(b[:4]) != indexMagic {
		return nil, false, fmt.Errorf("%w: no header", errIndexFile)
	}
	if v := binary.LittleEndian.Uint32(b[4:8]); v != indexVersion {
		return nil, false, fmt.Errorf("%w: version %d", errIndexFile, v)
	}
	b = b[indexHeaderSize:]
	out := make([]T, 0, len(b)/indexRecordSize)
	for len(b) > 0 {
		if len(b) < indexRecordSize {
			return out, true, nil // torn last append
		}
		r, ok := decodeIndexRecord(b[:indexRecordSize])
		b = b[indexRecordSize:]
		if !ok {
			if len(b) == 0 {
				return out, true, nil // torn last append
			}
			return nil, false, fmt.Errorf("%w: bad record before the end", errIndexFile)
		}
		out = append(out, conv(r))
	}
	return out, false, nil
}

// Bounds of a plausible record: years 1970–2200 (what SegmentName can
// round-trip), a segment under a day.
const (
	maxIndexMicros  = 7258118400 * 1e6 // 2200-01-01
	maxIndexSegment = 24 * time.Hour
)

func decodeIndexRecord(p []byte) (indexRecord, bool) {
	if crc32.ChecksumIEEE(p[:44]) != binary.LittleEndian.Uint32(p[44:48]) || binary.LittleEndian.Uint32(p[40:44]) != 0 {
		return indexRecord{}, false
	}
	r := indexRecord{
		name:     int64(binary.LittleEndian.Uint64(p[0:])),
		start:    int64(binary.LittleEndian.Uint64(p[8:])),
		duration: time.Duration(binary.LittleEndian.Uint64(p[16:])),
		size:     int64(binary.LittleEndian.Uint64(p[24:])),
		tracks:   binary.LittleEndian.Uint64(p[32:]),
	}
	ok := r.name >= 0 && r.name < maxIndexMicros &&
		r.start >= 0 && r.start < math.MaxInt64/2 &&
		r.duration > 0 && r.duration <= maxIndexSegment &&
		r.size > 0
	return r, ok
}

// loadOwn indexes our own folder at startup from each camera's persisted
// index, without listing the camera folders (a week of 100 cameras is a
// million files): it returns the cameras whose folder still has to be
// compared with the index (reconcile, in the background). A camera
// without a readable index file is listed and scanned now.
func (s *Store) loadOwn() (pending map[string]bool) {
	pending = make(map[string]bool)
	cams, err := fs.ReadDir(s.root.FS(), ".")
	if err != nil {
		s.Logger.Warn("archive: cannot list folder", "dir", s.root.Name(), "error", err)
		return pending
	}
	var names []string
	for _, c := range cams {
		if c.IsDir() && validName(c.Name()) {
			names = append(names, c.Name())
		}
	}
	// Cameras load in parallel: at 10 s segments a week is 60 480 records
	// per camera.
	var mu sync.Mutex
	eachParallel(names, func(cam string) {
		segs, torn, err := s.readIndexFile(cam)
		if err != nil {
			if !isNotExist(err) {
				s.Logger.Warn("archive: index file unreadable, scanning the camera", "camera", cam, "error", err)
			}
			s.reconcile(cam, true)
			return
		}
		records := len(segs)
		s.index.setCamera(cam, entriesOf(segs))
		s.indexMu.Lock()
		s.indexRecords[cam] = records
		s.indexMu.Unlock()
		mu.Lock()
		pending[cam] = torn
		mu.Unlock()
	})
	return pending
}

// entry is the index entry of the record's segment (our own folder's).
func (r indexRecord) entry() entry {
	return entry{start: r.start, dur: int64(r.duration), size: r.size, tracks: r.tracks, stem: r.name}
}

// entriesOf orders a camera's entries read from its index file (in file
// order) by start; of records of the same name (stem) the last one
// appended wins. Records are appended as segments complete, so they are
// nearly always in order already: that is checked in one pass and the
// sorts skipped.
func entriesOf(segs []entry) []entry {
	inOrder := true
	for i := 1; i < len(segs) && inOrder; i++ {
		inOrder = segs[i-1].stem < segs[i].stem && segs[i-1].start < segs[i].start
	}
	if inOrder {
		return segs
	}
	slices.SortStableFunc(segs, func(a, b entry) int { return cmp.Compare(a.stem, b.stem) })
	out := segs[:0]
	for i, e := range segs {
		if i+1 < len(segs) && segs[i+1].stem == e.stem {
			continue
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b entry) int { return cmp.Compare(a.start, b.start) })
	return slices.CompactFunc(out, func(a, b entry) bool { return a.start == b.start })
}

// eachParallel calls f for every item, on as many goroutines as CPUs.
func eachParallel(items []string, f func(string)) {
	var wg sync.WaitGroup
	next := make(chan string)
	for range min(runtime.GOMAXPROCS(0), max(1, len(items))) {
		wg.Go(func() {
			for it := range next {
				f(it)
			}
		})
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()
}

// reconcile compares a camera's indexed segments with its folder: a file
// the index does not cover (the segment being written at a crash, a file
// copied in by hand) or whose size changed is scanned and repaired, an
// entry whose file is gone is dropped, and the index file is rewritten
// if anything differed (or dirty). Segments recorded meanwhile are kept.
// Changes reach the cluster's shared index as recordings do.
func (s *Store) reconcile(cam string, dirty bool) {
	mem := make(map[string]Segment)
	for _, sg := range s.index.rangeOf(cam, time.Time{}, maxTime) {
		if sg.src == 0 {
			mem[sg.name()] = sg
		}
	}
	changed := dirty
	for _, f := range s.listCamera(s.root, cam) {
		name := f.Name()
		m, known := mem[name]
		delete(mem, name)
		st, err := f.Info()
		if err != nil || (known && st.Size() == m.Size) {
			continue
		}
		if !st.ModTime().Before(s.startedAt) {
			// Written since Initialize: a Writer of ours is recording
			// it (scanning would cut it back). It is indexed when done.
			continue
		}
		if known {
			s.index.remove(cam, m)
			s.published(cam, m, true)
		}
		changed = true
		start, ok := parseSegmentName(strings.TrimSuffix(name, segmentExt), time.UTC)
		if !ok {
			continue
		}
		if seg, ok := s.scanFile(0, cam, name, start, true); ok {
			s.published(cam, s.index.put(cam, seg), false)
		}
	}
	for _, m := range mem {
		s.index.remove(cam, m) // its file was deleted by hand (or cannot be read)
		s.published(cam, m, true)
		changed = true
	}
	if changed {
		if err := s.writeIndexFile(cam, s.index.rangeOf(cam, time.Time{}, maxTime)); err != nil {
			s.Logger.Warn("archive: cannot write index file", "camera", cam, "error", err)
		}
	}
}

// maxTime is past every segment.
var maxTime = time.Unix(1<<40, 0)

func (s *Store) readIndexFile(cam string) ([]entry, bool, error) {
	b, err := fs.ReadFile(s.root.FS(), cam+"/"+indexFileName)
	if err != nil {
		return nil, false, err
	}
	return decodeIndexFile(b, indexRecord.entry)
}

// writeIndexFile replaces a camera's index file with segs (write, sync,
// rename: a crash leaves the old file or the new one).
func (s *Store) writeIndexFile(cam string, segs []Segment) error {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	return s.writeIndexFileLocked(cam, segs)
}

func (s *Store) writeIndexFileLocked(cam string, segs []Segment) error {
	b := appendIndexHeader(make([]byte, 0, indexHeaderSize+len(segs)*indexRecordSize))
	n := 0
	for _, sg := range segs {
		if sg.src != 0 || sg.file != "" {
			continue // only our own folder's files, named by their stem
		}
		b = appendIndexRecord(b, recordOf(sg))
		n++
	}
	tmp := cam + "/" + indexFileName + ".tmp"
	f, err := s.root.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if e := f.Sync(); err == nil {
		err = e
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = s.root.Rename(tmp, cam+"/"+indexFileName)
	}
	if err != nil {
		s.root.Remove(tmp)
		return err
	}
	s.indexRecords[cam] = n
	return nil
}

// persistSegment appends a completed segment to its camera's index file.
// Not synced: a record lost in a crash only means that file is scanned at
// the next start.
func (s *Store) persistSegment(cam string, sg Segment) {
	if sg.file != "" {
		return // not a name of ours: index files hold our own only
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	path := cam + "/" + indexFileName
	if _, ok := s.indexRecords[cam]; !ok {
		// A new camera: start its file with a header.
		if err := s.writeIndexFileLocked(cam, nil); err != nil {
			s.Logger.Warn("archive: cannot write index file", "camera", cam, "error", err)
			return
		}
	}
	f, err := s.root.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.Write(appendIndexRecord(make([]byte, 0, indexRecordSize), recordOf(sg)))
		if e := f.Close(); err == nil {
			err = e
		}
	}
	if err != nil {
		s.Logger.Warn("archive: cannot append to index file", "camera", cam, "error", err)
		return
	}
	s.indexRecords[cam]++
}

// compactIndexFiles rewrites the index file of each camera in cams whose
// file holds more than twice its live segments (retention deleted them).
func (s *Store) compactIndexFiles(cams map[string]bool) {
	for cam := range cams {
		live := s.index.ownCount(cam)
		s.indexMu.Lock()
		n := s.indexRecords[cam]
		var err error
		if n > 2*live {
			err = s.writeIndexFileLocked(cam, s.index.rangeOf(cam, time.Time{}, maxTime))
		}
		s.indexMu.Unlock()
		if err != nil {
			s.Logger.Warn("archive: cannot compact index file", "camera", cam, "error", err)
		}
	}
}
