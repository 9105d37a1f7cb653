package archive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camgate/camgate/archive/mp4"

	"github.com/valyala/fasthttp"
)

// Import is an existing mediamtx recordings folder indexed read-only: its
// layout is FOLDER/{camera}/%Y-%m-%d_%H-%M-%S-%f.mp4 (mediamtx's default
// recordPath with %path = the camera id).
type Import struct {
	// Dir is the recordings folder.
	Dir string
	// Location is the zone mediamtx wrote file names in (mediamtx uses the
	// host's local time). Segments carrying mediamtx's own start-time box
	// use that instead. Default: time.Local.
	Location *time.Location
}

// Store is the archive of this node: segments, index, retention, media
// objects and the HTTP handlers serving them.
type Store struct {
	// Dir is the archive folder (DATA/archive). Required; created if missing.
	Dir string
	// Imports are mediamtx recordings folders served read-only (never
	// written, never pruned), rescanned every PruneInterval.
	Imports []Import
	// SegmentDuration is the target length of a recorded segment (default 10 s).
	SegmentDuration time.Duration
	// PartDuration is how often samples are flushed to disk as one fragment
	// (default 1 s): at most this much is lost in a crash.
	PartDuration time.Duration
	// Retention deletes segments older than this (default 168h).
	Retention time.Duration
	// MaxBytes is the disk budget of recorded segments; the oldest are
	// deleted beyond it (default 0: no budget).
	MaxBytes int64
	// PruneInterval is how often retention runs (default 1 min). It also
	// runs after every recorded segment when over the disk budget.
	PruneInterval time.Duration
	// MaxDownload caps a download's range (default 1 h); longer is a 400.
	MaxDownload time.Duration
	// MaxPlaylist caps a playlist's range (default 7 days).
	MaxPlaylist time.Duration
	// MaxObjectSize caps an uploaded media object (default 32 MiB).
	MaxObjectSize int
	// Authorizer decides every request of the handlers. Required.
	Authorizer Authorizer
	// WriteError answers every failed request. camgate's gateway passes
	// its HTTP front's one error mapping, so the archive answers as every
	// other edge (a rate-limited client is 429, an unreachable store 503).
	// Default (the archive used alone): its own statusOf.
	WriteError func(ctx *fasthttp.RequestCtx, err error)
	// AudioEncoder, when set, serves recorded PCM (G.711 cameras) as AAC in
	// HLS playback; without it that audio is left out and the playlist
	// says so (AudioDroppedHeader). Downloads always carry the PCM.
	AudioEncoder AudioEncoder
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	// Logger (default: discard).
	Logger *slog.Logger

	// roots[0] is Dir (read-write), roots[i] is Imports[i-1]. Every file
	// access goes through an os.Root: nothing outside them is ever opened.
	roots []*os.Root
	root  *os.Root
	// aac is AudioEncoder behind a cache; nil without one.
	aac   AudioEncoder
	index *index
	// chunks recycles the writers' part buffers (*[partChunk]byte) between
	// cameras.
	chunks sync.Pool
	// indexMu serializes writes to the camera folders' index files;
	// indexRecords counts the records in each (for compaction).
	indexMu      sync.Mutex
	indexRecords map[string]int
	// indexed is closed once every camera's folder was compared with its
	// index file (the first thing retention's goroutine does).
	indexed chan struct{}
	// startedAt is the real time Initialize began: a segment file modified
	// since is being written by this process, never repaired.
	startedAt time.Time
	// importScans caches scan results per import file (owned by the prune goroutine).
	importScans map[string]cachedScan
	// co64Above is the download size past which chunk offsets are 64-bit
	// (co64, a 64-bit mdat size); 0 means when 32 bits no longer reach.
	// Tests lower it: a file past 4 GiB is no fixture.
	co64Above int64

	// cluster is set once by JoinCluster (nil: a single node's archive).
	cluster   atomic.Pointer[clusterLink]
	heldReads atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	prune  chan struct{}
}

type cachedScan struct {
	size    int64
	modTime time.Time
	seg     Segment
	ok      bool
}

// Initialize applies defaults, opens the folders, rebuilds the index from
// them (repairing partial tails) and starts retention.
func (s *Store) Initialize() error {
	if s.Dir == "" {
		return errors.New("archive: Dir is required")
	}
	if s.Authorizer == nil {
		return errors.New("archive: Authorizer is required")
	}
	setDefault(&s.SegmentDuration, 10*time.Second)
	setDefault(&s.PartDuration, time.Second)
	setDefault(&s.Retention, 168*time.Hour)
	setDefault(&s.PruneInterval, time.Minute)
	setDefault(&s.MaxDownload, time.Hour)
	setDefault(&s.MaxPlaylist, 7*24*time.Hour)
	if s.MaxObjectSize <= 0 {
		s.MaxObjectSize = 32 << 20
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	root, err := os.OpenRoot(s.Dir)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	s.root = root
	s.roots = []*os.Root{root}
	for i := range s.Imports {
		if s.Imports[i].Location == nil {
			s.Imports[i].Location = time.Local
		}
		r, err := os.OpenRoot(s.Imports[i].Dir)
		if err != nil {
			s.closeRoots()
			return fmt.Errorf("archive: import %s: %w", s.Imports[i].Dir, err)
		}
		s.roots = append(s.roots, r)
	}
	s.startedAt = time.Now()
	s.index = newIndex()
	s.importScans = make(map[string]cachedScan)
	s.indexRecords = make(map[string]int)
	pending := s.loadOwn()
	s.index.persist = s.persistSegment
	s.scanImports()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.AudioEncoder != nil {
		s.aac = newAACCache(s.AudioEncoder)
	}
	s.prune = make(chan struct{}, 1)
	s.indexed = make(chan struct{})
	s.wg.Add(1)
	go s.run(pending)
	return nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Close stops retention and closes the folders. Writers must be closed first.
func (s *Store) Close() {
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
	}
	s.closeRoots()
}

func (s *Store) closeRoots() {
	for _, r := range s.roots {
		r.Close()
	}
}

// run owns retention and import rescans. It first compares the cameras
// loaded from their index files with their folders (reconcile): a segment
// file is scanned at startup only when no index covers it, and that wait
// is not part of startup. A segment partial at a crash (the one being
// written) is cut back to its last complete fragment; one with no
// complete fragment holds no media and is deleted.
func (s *Store) run(pending map[string]bool) {
	defer s.wg.Done()
	for cam, dirty := range pending {
		if s.ctx.Err() != nil {
			return
		}
		s.reconcile(cam, dirty)
	}
	close(s.indexed)
	t := time.NewTicker(s.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.scanImports()
		case <-s.prune:
		}
		s.Prune()
	}
}

// afterSegment publishes a recorded segment to the cluster and asks the
// retention goroutine to check the disk budget.
func (s *Store) afterSegment(camera string, seg Segment) {
	s.published(camera, seg, false)
	if s.MaxBytes <= 0 || s.prune == nil {
		return
	}
	select {
	case s.prune <- struct{}{}:
	default:
	}
}

// Segments returns the indexed segments of camera overlapping [start, end).
func (s *Store) Segments(camera string, start, end time.Time) []Segment {
	return s.index.rangeOf(camera, start, end)
}

// listSegments lists camera folders and their .mp4 files.
func (s *Store) listSegments(root *os.Root) map[string][]fs.DirEntry {
	out := make(map[string][]fs.DirEntry)
	cams, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		s.Logger.Warn("archive: cannot list folder", "dir", root.Name(), "error", err)
		return out
	}
	for _, c := range cams {
		if !c.IsDir() || !validName(c.Name()) {
			continue
		}
		if files := s.listCamera(root, c.Name()); len(files) > 0 {
			out[c.Name()] = files
		}
	}
	return out
}

// listCamera lists the .mp4 files of a camera folder (sorted by name).
func (s *Store) listCamera(root *os.Root, cam string) []fs.DirEntry {
	files, err := fs.ReadDir(root.FS(), cam)
	if err != nil {
		return nil
	}
	return slices.DeleteFunc(files, func(f fs.DirEntry) bool {
		return !f.Type().IsRegular() || !strings.HasSuffix(f.Name(), segmentExt)
	})
}

// scanFile validates one segment file and returns its index entry.
func (s *Store) scanFile(src int, cam, name string, start time.Time, repair bool) (Segment, bool) {
	path := cam + "/" + name
	log := s.Logger.With("camera", cam, "segment", name)
	f, err := s.roots[src].Open(path)
	if err != nil {
		return Segment{}, false
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return Segment{}, false
	}
	sc, err := scanSegment(f, st.Size())
	f.Close()
	if err != nil || sc.parts == 0 {
		log.Warn("archive: segment has no complete fragment, ignored", "error", err)
		if repair && (err == nil || errors.Is(err, mp4.ErrPartial)) {
			s.root.Remove(path) // cut off before any media: nothing to keep
		}
		return Segment{}, false
	}
	named := start
	if !sc.ntp.IsZero() {
		start = sc.ntp
	}
	if sc.validLen < st.Size() {
		log.Warn("archive: partial segment tail dropped", "size", st.Size(), "kept", sc.validLen)
		if repair {
			if err := s.repair(path, sc); err != nil {
				log.Warn("archive: repair failed, segment ignored", "error", err)
				return Segment{}, false
			}
		}
	}
	seg := Segment{Start: start, Duration: sc.duration, Size: sc.validLen, src: src, tracks: sc.tracks}
	if src == 0 && segmentFileName(named) == name {
		seg.stem = named.UnixMicro()
	} else {
		seg.file = name
	}
	return seg, true
}

// repair truncates a segment to its complete prefix and records the
// duration in mvhd, as a clean close would have.
func (s *Store) repair(path string, sc segmentScan) error {
	f, err := s.root.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(sc.validLen); err != nil {
		return err
	}
	hdr := make([]byte, sc.initLen)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return err
	}
	if off, err := mvhdDurationOffset(hdr); err == nil {
		v := uint32(sc.duration / time.Millisecond)
		if _, err := f.WriteAt([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}, off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// scanImports (re)indexes every import folder, rescanning only files whose
// size or modification time changed (mediamtx may still be writing them).
func (s *Store) scanImports() {
	for i := range s.Imports {
		src := i + 1
		segs := make(map[string][]Segment)
		for cam, files := range s.listSegments(s.roots[src]) {
			for _, f := range files {
				if seg, ok := s.scanImport(src, cam, f.Name()); ok {
					segs[cam] = append(segs[cam], seg)
				}
			}
		}
		s.index.replaceSource(src, segs)
	}
}

func (s *Store) scanImport(src int, cam, name string) (Segment, bool) {
	key := fmt.Sprintf("%d/%s/%s", src, cam, name)
	st, err := s.roots[src].Stat(cam + "/" + name)
	if err != nil {
		delete(s.importScans, key)
		return Segment{}, false
	}
	if c, ok := s.importScans[key]; ok && c.size == st.Size() && c.modTime.Equal(st.ModTime()) {
		return c.seg, c.ok
	}
	start, ok := parseSegmentName(strings.TrimSuffix(name, segmentExt), s.Imports[src-1].Location)
	var seg Segment
	if ok {
		seg, ok = s.scanFile(src, cam, name, start, false)
		seg.Start = seg.Start.Truncate(time.Microsecond)
	}
	s.importScans[key] = cachedScan{size: st.Size(), modTime: st.ModTime(), seg: seg, ok: ok}
	return seg, ok
}
