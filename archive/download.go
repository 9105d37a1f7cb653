package archive

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
	"github.com/valyala/fasthttp"
)

// maxMP4Data: a progressive MP4 addresses its samples with 32-bit offsets.
const maxMP4Data = 1<<32 - 1<<20

// readWindow is how much of a segment file is read at once while streaming
// a download: samples come out in time order, which is file order.
const readWindow = 256 << 10

// ServeDownload answers GET /archive/{camera}/download?start=&end=&token=
// with one MP4 file (video only without sound), streamed: only sample
// tables are held in memory, payloads are read from the segments as they
// are sent. It needs "download" at the start and end of the range and at
// every segment's recording time; any refusal refuses the whole download.
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
	ctx.SetContentType("video/mp4")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.Header.Set(fasthttp.HeaderContentDisposition, `attachment; filename="`+d.Filename+`"`)
	log := s.Logger
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		if err := d.Write(w); err != nil {
			log.Info("archive: download interrupted", "camera", camera, "error", err)
		}
	})
}

// Download is a prepared MP4 download: authorized, sample tables read.
type Download struct {
	// Filename is camera_START_END.mp4 (UTC, basic ISO 8601).
	Filename string
	pres     pmp4.Presentation
	payloads *payloadReader
}

// Write streams the MP4 to w and releases the files.
func (d *Download) Write(w io.Writer) error {
	defer d.payloads.close()
	return d.pres.Marshal(&elstFixer{w: w, tracks: d.pres.Tracks})
}

// elstFixer corrects the edit lists of the header pmp4 writes (its first
// Write: ftyp+moov). For a track whose presentation starts inside its media
// (negative TimeOffset: the lead-in from the keyframe before the range
// start is hidden), pmp4 v2.9.3 writes segment_duration = media duration +
// lead-in instead of media duration - lead-in, so players report the file
// that much too long.
type elstFixer struct {
	w      io.Writer
	tracks []*pmp4.Track
	done   bool
}

func (f *elstFixer) Write(b []byte) (int, error) {
	if !f.done {
		f.done = true
		fixEditLists(b, f.tracks)
	}
	return f.w.Write(b)
}

func fixEditLists(b []byte, tracks []*pmp4.Track) {
	ftyp, err := boxAt(b, 0)
	if err != nil {
		return
	}
	moov, err := boxAt(b, ftyp.end())
	if err != nil || moov.typ != "moov" {
		return
	}
	i := 0
	for off := moov.off + 8; off < moov.end() && i < len(tracks); {
		trak, err := boxAt(b[:moov.end()], off)
		if err != nil {
			return
		}
		off = trak.end()
		if trak.typ != "trak" {
			continue
		}
		t := tracks[i]
		i++
		if t.TimeOffset >= 0 {
			continue
		}
		for c := trak.off + 8; c < trak.end(); {
			edts, err := boxAt(b[:trak.end()], c)
			if err != nil {
				break
			}
			c = edts.end()
			if edts.typ != "edts" {
				continue
			}
			elst, err := boxAt(b[:edts.end()], edts.off+8)
			// elst v0 with one entry: header 8, version/flags 4, count 4, duration 4
			if err != nil || elst.typ != "elst" || elst.size < 28 || b[elst.off+8] != 0 {
				break
			}
			var dur int64
			for _, sa := range t.Samples {
				dur += int64(sa.Duration)
			}
			v := max(dur+int64(t.TimeOffset), 0) * 1000 / int64(t.TimeScale)
			binary.BigEndian.PutUint32(b[elst.off+16:], uint32(v))
		}
	}
}

// PrepareDownload authorizes a download of [start, end) and reads the
// sample tables of its segments.
func (s *Store) PrepareDownload(ctx context.Context, tok, camera string, start, end time.Time) (*Download, error) {
	sound := true
	for _, at := range []time.Time{start, end} {
		v, err := s.authorize(ctx, tok, camera, ActionDownload, at)
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
		v, err := s.authorize(ctx, tok, camera, ActionDownload, sg.Start)
		if err != nil {
			return nil, err
		}
		sound = sound && v.Sound
	}
	d := &Download{
		Filename: camera + "_" + start.UTC().Format("20060102T150405Z") + "_" + end.UTC().Format("20060102T150405Z") + ".mp4",
		payloads: &payloadReader{root: s.roots, camera: camera, segs: segs},
	}
	m := &mp4Muxer{}
	for i, sg := range segs {
		ok, err := s.addSegment(m, d.payloads, i, camera, sg, start, end, sound)
		if err != nil {
			return nil, err
		}
		if !ok {
			s.Logger.Info("archive: download stops where the recording's tracks change", "camera", camera, "segment", sg.ID())
			break
		}
	}
	tracks, size := m.finish()
	if len(tracks) == 0 {
		return nil, fmt.Errorf("%w: no samples of %s between %s and %s", ErrNotFound, camera,
			start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	if size > maxMP4Data {
		return nil, fmt.Errorf("%w: the range holds %d MB, more than one MP4 file can; ask for a shorter range", ErrBadRequest, size>>20)
	}
	d.pres.Tracks = tracks
	return d, nil
}

// addSegment appends one segment's samples to the muxer; false when its
// tracks do not match the download's.
func (s *Store) addSegment(m *mp4Muxer, pr *payloadReader, idx int, camera string, seg Segment, start, end time.Time, sound bool) (bool, error) {
	f, err := s.roots[seg.src].Open(camera + "/" + seg.name)
	if err != nil {
		return false, fmt.Errorf("archive: open segment %s of %s: %w", seg.ID(), camera, err)
	}
	defer f.Close()
	sc, err := readSampleTables(f, seg.Size, m.prev)
	if err != nil {
		return false, fmt.Errorf("archive: segment %s of %s: %w", seg.ID(), camera, err)
	}
	m.prev = sc
	if !m.setInit(sc.init, sound) {
		return false, nil
	}
	offset := seg.Start.Sub(start) // segment time 0 on the download's timeline
	for _, tr := range sc.runs {
		t := m.track(tr.trackID)
		if t == nil {
			continue
		}
		dts := durationToTicks(offset, t.TimeScale) + int64(tr.base)
		limit := durationToTicks(end.Sub(start), t.TimeScale)
		if t.ended {
			continue
		}
		off := tr.dataOffset
		for _, e := range tr.entries {
			if dts >= limit {
				t.ended = true // the first sample past the range ends the track
				break
			}
			t.add(dts, e, pr.payload(idx, off, e.size))
			off += int64(e.size)
			dts += int64(e.dur)
		}
		t.finalDTS(dts)
	}
	return true, nil
}

// trackRun is one trun of a segment with absolute file offsets.
type trackRun struct {
	trackID    int
	base       uint64
	dataOffset int64
	entries    []trunEntry
}

type sampleTables struct {
	init        *fmp4.Init
	fingerprint uint64
	runs        []trackRun
}

// readSampleTables reads a segment's init and every moof (never an mdat).
func readSampleTables(f io.ReaderAt, size int64, prev *sampleTables) (*sampleTables, error) {
	moov, err := readBoxAt(f, 0, size)
	if err != nil {
		return nil, err
	}
	for moov.typ != "moov" {
		if moov, err = readBoxAt(f, moov.end(), size); err != nil {
			return nil, err
		}
	}
	hdr := make([]byte, moov.end())
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, err
	}
	st := &sampleTables{fingerprint: tracksFingerprint(hdr)}
	if prev != nil && prev.fingerprint == st.fingerprint {
		st.init = prev.init // consecutive segments of one recording share their init
	} else if st.init, _, err = parseInit(hdr); err != nil {
		return nil, err
	}
	var moofBuf []byte
	for off := moov.end(); off < size; {
		b, err := readBoxAt(f, off, size)
		if err != nil {
			return nil, err
		}
		off = b.end()
		if b.typ != "moof" {
			continue
		}
		moofBuf = append(moofBuf[:0], make([]byte, b.size)...)
		if _, err := f.ReadAt(moofBuf, b.off); err != nil {
			return nil, err
		}
		if err := st.addMoof(moofBuf, b.off); err != nil {
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
					cur.dataOffset = int64(be.Uint64(p))
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
			r, err := parseTrun(p, version, flags, cur, defDur, defSize, defFlags)
			if err != nil {
				return err
			}
			st.runs = append(st.runs, r)
		}
	}
	return nil
}

func parseTrun(p []byte, version byte, flags uint32, cur trackRun, defDur, defSize, defFlags uint32) (trackRun, error) {
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
		cur.dataOffset += int64(int32(be.Uint32(p)))
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
	if n < 0 || len(p) < n*per {
		return cur, errBadTraf
	}
	cur.entries = make([]trunEntry, n)
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
	return cur, nil
}

// trunEntry is one sample of a trun, defaults from tfhd applied.
type trunEntry struct {
	dur, size, flags uint32
	cts              int32
}

// mp4Muxer gathers sample tables for pmp4, the way mediamtx's playback
// muxer does: a sync sample before the range start drops what came before
// it, so the file starts on the keyframe preceding start and an edit list
// (negative TimeOffset) hides the lead-in.
type mp4Muxer struct {
	prev   *sampleTables
	init   *fmp4.Init
	tracks []*muxTrack
}

type muxTrack struct {
	pmp4.Track
	lastDTS int64
	ended   bool
}

func (m *mp4Muxer) setInit(init *fmp4.Init, sound bool) bool {
	keep := keepTracks(init, sound)
	if m.init == nil {
		m.init = init
		for _, t := range keep {
			m.tracks = append(m.tracks, &muxTrack{Track: pmp4.Track{ID: t.ID, TimeScale: t.TimeScale, Codec: t.Codec}})
		}
		return len(keep) > 0
	}
	if len(keep) != len(m.tracks) {
		return false
	}
	for i, t := range keep {
		mt := m.tracks[i]
		if t.ID != mt.ID || t.TimeScale != mt.TimeScale || reflect.TypeOf(t.Codec) != reflect.TypeOf(mt.Codec) {
			return false
		}
	}
	return true
}

func (m *mp4Muxer) track(id int) *muxTrack {
	for _, t := range m.tracks {
		if t.ID == id {
			return t
		}
	}
	return nil
}

const sampleFlagNonSync = 1 << 16

func (t *muxTrack) add(dts int64, e trunEntry, payload func() ([]byte, error)) {
	nonSync := e.flags&sampleFlagNonSync != 0
	// A sync sample before the range start, or the first one after a
	// lead-in, makes what was gathered so far useless: start over here.
	if !nonSync && (dts < 0 || t.lastDTS < 0) {
		t.Samples = t.Samples[:0]
	}
	if len(t.Samples) == 0 {
		if nonSync {
			return // a decoder cannot start on a non-sync sample
		}
		t.TimeOffset = int32(dts)
	} else {
		t.Samples[len(t.Samples)-1].Duration = uint32(max(dts-t.lastDTS, 0))
	}
	ptsOffset := e.cts
	if !nonSync {
		ptsOffset = 0
	}
	t.Samples = append(t.Samples, &pmp4.Sample{
		PTSOffset:       ptsOffset,
		IsNonSyncSample: nonSync,
		PayloadSize:     e.size,
		GetPayload:      payload,
	})
	t.lastDTS = dts
}

func (t *muxTrack) finalDTS(dts int64) {
	if n := len(t.Samples); n > 0 {
		t.Samples[n-1].Duration = uint32(max(dts-t.lastDTS, 0))
	}
}

func (m *mp4Muxer) finish() ([]*pmp4.Track, int64) {
	var out []*pmp4.Track
	var size int64
	for _, t := range m.tracks {
		if len(t.Samples) == 0 {
			continue
		}
		for _, sa := range t.Samples {
			size += int64(sa.PayloadSize)
		}
		out = append(out, &t.Track)
	}
	return out, size
}

// payloadReader serves sample payloads while the MP4 is written: one open
// segment at a time, read a window at a time. Owned by the writing goroutine.
type payloadReader struct {
	root   []*os.Root
	camera string
	segs   []Segment

	cur    int
	f      *os.File
	win    []byte
	winOff int64
}

func (r *payloadReader) payload(seg int, off int64, size uint32) func() ([]byte, error) {
	return func() ([]byte, error) { return r.read(seg, off, int64(size)) }
}

func (r *payloadReader) read(seg int, off, size int64) ([]byte, error) {
	if r.f == nil || r.cur != seg {
		r.closeFile()
		sg := r.segs[seg]
		f, err := r.root[sg.src].Open(r.camera + "/" + sg.name)
		if err != nil {
			return nil, err
		}
		r.f, r.cur, r.win = f, seg, r.win[:0]
	}
	if off >= r.winOff && off+size <= r.winOff+int64(len(r.win)) {
		return r.win[off-r.winOff : off-r.winOff+size], nil
	}
	n := max(size, readWindow)
	n = min(n, max(r.segs[seg].Size-off, size))
	if int64(cap(r.win)) < n {
		r.win = make([]byte, n)
	}
	r.win = r.win[:n]
	m, err := r.f.ReadAt(r.win, off)
	if int64(m) < size {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	r.win, r.winOff = r.win[:m], off
	return r.win[:size], nil
}

func (r *payloadReader) closeFile() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

func (r *payloadReader) close() { r.closeFile() }
