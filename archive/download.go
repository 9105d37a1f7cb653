package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"time"

	"github.com/camgate/camgate/archive/mp4"

	"github.com/valyala/fasthttp"
)

// copyBuffer is the read size for payloads: a fragment's payload (a second
// of video) usually comes in one pread. Large reads beat handing the file
// to the destination's ReadFrom: behind fasthttp that reads 4 KiB at a time
// unless the connection is plain TCP (sendfile), and TLS is common.
const copyBuffer = 128 << 10

// ServeDownload answers GET /archive/{camera}/download?start=&end=&token=
// with one progressive MP4 file (video only without sound), streamed with
// its Content-Length: only sample tables are held in memory, payloads are
// copied from the segment files in large reads as they are sent.
// It needs "download" at the start and end of the range and at every
// segment's recording time; any refusal refuses the whole download.
func (s *Store) ServeDownload(ctx *fasthttp.RequestCtx, camera string) {
	if err := checkName("camera", camera); err != nil {
		s.writeError(ctx, err)
		return
	}
	q := ctx.QueryArgs()
	start, end, err := ParseRange(string(q.Peek("start")), string(q.Peek("end")), s.Now(), s.MaxDownload, false)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	d, err := s.PrepareDownload(ctx, token(ctx), camera, start, end)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	d.logger = s.Logger.With("camera", camera)
	ctx.SetContentType("video/mp4")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.Header.Set(fasthttp.HeaderContentDisposition, `attachment; filename="`+d.Filename+`"`)
	// fasthttp writes it with WriteTo after the handler returns and closes it.
	ctx.SetBodyStream(d, int(d.Size()))
}

// Download is a prepared MP4 download: authorized, header built, payload
// ranges listed. It is an io.Reader and an io.WriterTo (the fast path) and
// must be closed; one goroutine uses it.
type Download struct {
	// Filename is camera_START_END.mp4 (UTC, basic ISO 8601).
	Filename string

	header []byte // ftyp, moov and the mdat header
	pieces []piece
	files  *segmentFiles
	logger *slog.Logger // nil: errors are only returned

	// Read position: header[hdrPos:], then pieces[cur] from pieceOff.
	hdrPos   int
	cur      int
	pieceOff int64
	buf      []byte
}

// piece is a byte range of a segment file copied verbatim into the mdat.
type piece struct {
	seg  int32
	off  int64
	size int64
}

// Size is the length of the file in bytes.
func (d *Download) Size() int64 {
	n := int64(len(d.header))
	for _, p := range d.pieces {
		n += p.size
	}
	return n
}

// Write streams the MP4 to w and releases the files.
func (d *Download) Write(w io.Writer) error {
	_, err := d.WriteTo(w)
	return err
}

// WriteTo streams what is left of the MP4 to w and closes d.
func (d *Download) WriteTo(w io.Writer) (int64, error) {
	defer d.Close()
	n, err := d.writeTo(w)
	if err != nil && d.logger != nil {
		d.logger.Info("archive: download interrupted", "file", d.Filename, "sent", n, "error", err)
	}
	return n, err
}

func (d *Download) writeTo(w io.Writer) (int64, error) {
	var total int64
	if d.hdrPos < len(d.header) {
		n, err := w.Write(d.header[d.hdrPos:])
		d.hdrPos += n
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	if d.buf == nil {
		d.buf = make([]byte, copyBuffer)
	}
	for ; d.cur < len(d.pieces); d.cur, d.pieceOff = d.cur+1, 0 {
		p := d.pieces[d.cur]
		f, err := d.open(p.seg)
		if err != nil {
			return total, err
		}
		for d.pieceOff < p.size {
			b := d.buf[:min(int64(len(d.buf)), p.size-d.pieceOff)]
			n, err := f.ReadAt(b, p.off+d.pieceOff)
			if n < len(b) {
				if err == nil || errors.Is(err, io.EOF) {
					err = fmt.Errorf("archive: segment %s of %s shrank while downloading: %w", d.files.segs[p.seg].ID(), d.files.camera, io.ErrUnexpectedEOF)
				}
				return total, err
			}
			n, err = w.Write(b)
			d.pieceOff += int64(n)
			total += int64(n)
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// Read implements io.Reader for callers without the WriterTo path.
func (d *Download) Read(b []byte) (int, error) {
	if d.hdrPos < len(d.header) {
		n := copy(b, d.header[d.hdrPos:])
		d.hdrPos += n
		return n, nil
	}
	for d.cur < len(d.pieces) && d.pieceOff == d.pieces[d.cur].size {
		d.cur, d.pieceOff = d.cur+1, 0
	}
	if d.cur == len(d.pieces) {
		return 0, io.EOF
	}
	p := d.pieces[d.cur]
	f, err := d.open(p.seg)
	if err != nil {
		return 0, err
	}
	b = b[:min(int64(len(b)), p.size-d.pieceOff)]
	n, err := f.ReadAt(b, p.off+d.pieceOff)
	d.pieceOff += int64(n)
	if n == len(b) {
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// open returns the file of pieces[cur]; a segment's pieces are consecutive,
// so the previous segment's file is closed.
func (d *Download) open(seg int32) (*os.File, error) {
	if d.cur > 0 && d.pieces[d.cur-1].seg != seg {
		d.files.release(int(d.pieces[d.cur-1].seg))
	}
	return d.files.get(int(seg))
}

// Close releases the files; it may be called more than once. WriteTo
// closes d itself.
func (d *Download) Close() error {
	d.files.close()
	return nil
}

// PrepareDownload authorizes a download of [start, end), reads the sample
// tables of its segments and builds the MP4 header. The Download must be
// written or closed.
func (s *Store) PrepareDownload(ctx context.Context, tok, camera string, start, end time.Time) (*Download, error) {
	auth, err := s.begin(ctx, tok, camera, ActionDownload)
	if err != nil {
		return nil, err
	}
	sound := true
	for _, at := range []time.Time{start, end} {
		v, err := auth.authorize(at)
		if err != nil {
			return nil, err
		}
		sound = sound && v.Sound
	}
	segs := s.index.rangeOf(camera, start, end)
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w: no recordings of %s between %s and %s", ErrNotFound, camera,
			start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	for _, sg := range segs {
		v, err := auth.authorize(sg.Start)
		if err != nil {
			return nil, err
		}
		sound = sound && v.Sound
	}
	d := &Download{
		Filename: camera + "_" + start.UTC().Format("20060102T150405Z") + "_" + end.UTC().Format("20060102T150405Z") + ".mp4",
		files:    &segmentFiles{roots: s.roots, camera: camera, segs: segs, files: make([]*os.File, len(segs))},
	}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	m := &mp4Muxer{}
	for i, sg := range segs {
		same, err := s.addSegment(m, d.files, i, start, end, sound)
		if err != nil {
			return nil, err
		}
		if !same {
			s.Logger.Info("archive: download stops where the recording's tracks change", "camera", camera, "segment", sg.ID())
			break
		}
	}
	tracks := m.finish()
	if len(tracks) == 0 {
		return nil, fmt.Errorf("%w: no samples of %s between %s and %s", ErrNotFound, camera,
			start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	d.pieces = layoutChunks(tracks)
	if d.header, err = buildHeader(m.hdr, tracks, d.Size()); err != nil {
		return nil, fmt.Errorf("archive: download of %s: %w", camera, err)
	}
	ok = true
	return d, nil
}

// addSegment appends one segment's samples to the muxer; false when its
// tracks do not match the download's.
func (s *Store) addSegment(m *mp4Muxer, files *segmentFiles, idx int, start, end time.Time, sound bool) (bool, error) {
	seg := files.segs[idx]
	f, err := files.get(idx)
	if err != nil {
		return false, err
	}
	defer files.keep(idx)
	m.window.Reset(f, seg.Size)
	sc, err := readSampleTables(&m.window, m.prev)
	if err != nil {
		return false, fmt.Errorf("archive: segment %s of %s: %w", seg.ID(), files.camera, err)
	}
	m.prev = sc
	if !m.setInit(sc, sound) {
		return false, nil
	}
	m.addRuns(sc, idx, len(files.segs)-idx, seg.Start.Sub(start), end.Sub(start))
	return true, nil
}

// addRuns appends the samples of segment idx (its tables sc, time 0 at
// offset on the download's timeline) that start before span; left is how
// many segments, this one included, the download still reads.
func (m *mp4Muxer) addRuns(sc *sampleTables, idx, left int, offset, span time.Duration) {
	// Size the tables once for the whole download: this segment's sample
	// count times the segments left, up to maxPrealloc (one lying segment
	// must not reserve its count times every segment behind it).
	for _, t := range m.tracks {
		n := 0
		for _, tr := range sc.Runs {
			if tr.TrackID == t.id {
				n += len(tr.Entries)
			}
		}
		if cap(t.samples)-len(t.samples) < n {
			t.samples = slices.Grow(t.samples, max(n, min(n*left, maxPrealloc)))
		}
	}
	for _, tr := range sc.Runs {
		t := m.track(tr.TrackID)
		if t == nil || t.ended {
			continue
		}
		dts := durationToTicks(offset, t.timeScale) + int64(tr.Base)
		if n := len(t.samples); n > 0 {
			// Segments of an import may overlap a little (mediamtx and
			// ffmpeg start every file's tracks at 0, audio runs past the
			// video): a run starts where the track's previous one ended.
			dts = max(dts, t.lastDTS+int64(t.samples[n-1].dur))
		}
		limit := durationToTicks(span, t.timeScale)
		off := tr.DataOffset
		for _, e := range tr.Entries {
			if dts >= limit {
				t.ended = true // the first sample past the range ends the track
				break
			}
			t.add(dts, dlSample{seg: int32(idx), off: off, size: e.Size, cts: e.CTS, sync: e.Flags&sampleFlagNonSync == 0})
			off += int64(e.Size)
			dts += int64(e.Dur)
		}
		t.finalDTS(dts)
	}
}

// maxPrealloc bounds the samples reserved per track ahead of reading
// them: about an hour of 25 fps video with its audio.
const maxPrealloc = 1 << 18

// mp4Muxer gathers the download's sample tables the way mediamtx's
// playback muxer does: a sync sample before the range start drops what came
// before it, so the file starts on the keyframe preceding start and an edit
// list hides the lead-in.
type mp4Muxer struct {
	window mp4.Window // reused for every segment
	prev   *sampleTables
	init   []initInfo // the first segment's tracks
	hdr    []byte     // the first segment's ftyp+moov
	tracks []*dlTrack
}

// dlTrack is one track of the download.
type dlTrack struct {
	id        int
	timeScale uint32
	samples   []dlSample
	chunks    []int64 // mdat offset of each chunk, relative to the mdat's payload
	start     int64   // DTS of samples[0] on the download's timeline; < 0: a lead-in
	lastDTS   int64
	ended     bool
}

// dlSample is one sample of the download and where its payload lies.
type dlSample struct {
	off   int64 // in its segment file
	seg   int32 // index in Download.segs
	size  uint32
	dur   uint32
	cts   int32
	sync  bool
	first bool // begins a chunk (set by layoutChunks)
}

func (m *mp4Muxer) setInit(sc *sampleTables, sound bool) bool {
	var keep []initInfo
	for _, t := range sc.tracks {
		if t.handler == "vide" || (sound && t.handler == "soun") {
			keep = append(keep, t)
		}
	}
	if m.init == nil {
		m.init, m.hdr = keep, sc.hdr
		for _, t := range keep {
			m.tracks = append(m.tracks, &dlTrack{id: t.id, timeScale: t.timeScale})
		}
		return len(keep) > 0
	}
	return slices.Equal(keep, m.init)
}

func (m *mp4Muxer) track(id int) *dlTrack {
	for _, t := range m.tracks {
		if t.id == id {
			return t
		}
	}
	return nil
}

const sampleFlagNonSync = 1 << 16

func (t *dlTrack) add(dts int64, s dlSample) {
	// A sync sample before the range start, or the first one after a
	// lead-in, makes what was gathered so far useless: start over here.
	if s.sync && (dts < 0 || t.lastDTS < 0) {
		t.samples = t.samples[:0]
	}
	if len(t.samples) == 0 {
		if !s.sync {
			return // a decoder cannot start on a non-sync sample
		}
		t.start = dts
	} else {
		t.samples[len(t.samples)-1].dur = clampDuration(dts - t.lastDTS)
	}
	t.samples = append(t.samples, s)
	t.lastDTS = dts
}

func (t *dlTrack) finalDTS(dts int64) {
	if n := len(t.samples); n > 0 {
		t.samples[n-1].dur = clampDuration(dts - t.lastDTS)
	}
}

func clampDuration(v int64) uint32 { return uint32(min(max(v, 0), math.MaxUint32)) }

// finish returns the tracks that have samples inside the range.
func (m *mp4Muxer) finish() []*dlTrack {
	var out []*dlTrack
	for _, t := range m.tracks {
		if len(t.samples) > 0 && t.lastDTS >= 0 {
			out = append(out, t)
		}
	}
	return out
}

// layoutChunks groups each track's samples into chunks (runs contiguous in
// one segment file), orders every chunk as in the segment files, assigns
// their offsets in the mdat and returns the byte ranges to copy, adjacent
// chunks merged: with sound, a whole fragment's payload is one range.
func layoutChunks(tracks []*dlTrack) []piece {
	type chunk struct {
		piece
		track, index int
	}
	var chunks []chunk
	for ti, t := range tracks {
		for i := range t.samples {
			s := &t.samples[i]
			if n := len(chunks); n > 0 && i > 0 {
				c := &chunks[n-1]
				if c.seg == s.seg && c.off+c.size == s.off {
					c.size += int64(s.size)
					continue
				}
			}
			s.first = true
			chunks = append(chunks, chunk{piece: piece{seg: s.seg, off: s.off, size: int64(s.size)}, track: ti, index: len(t.chunks)})
			t.chunks = append(t.chunks, 0)
		}
	}
	slices.SortStableFunc(chunks, func(a, b chunk) int {
		return cmp.Or(cmp.Compare(a.seg, b.seg), cmp.Compare(a.off, b.off))
	})
	var pieces []piece
	var at int64
	for _, c := range chunks {
		tracks[c.track].chunks[c.index] = at
		at += c.size
		if n := len(pieces); n > 0 && pieces[n-1].seg == c.seg && pieces[n-1].off+pieces[n-1].size == c.off {
			pieces[n-1].size += c.size
			continue
		}
		pieces = append(pieces, c.piece)
	}
	return pieces
}

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
