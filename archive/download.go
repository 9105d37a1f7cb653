package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	start, end, ok := s.rangeRequest(ctx, camera, s.MaxDownload, false)
	if !ok {
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

	header []byte      // ftyp, moov and the mdat header
	pieces []mp4.Piece // Src is an index in files.segs
	files  *segmentFiles
	logger *slog.Logger // nil: errors are only returned

	// Read position: header[hdrPos:], then pieces[cur] from pieceOff.
	hdrPos   int
	cur      int
	pieceOff int64
	buf      []byte
}

// Size is the length of the file in bytes.
func (d *Download) Size() int64 {
	n := int64(len(d.header))
	for _, p := range d.pieces {
		n += p.Size
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
		f, err := d.open(p.Src)
		if err != nil {
			return total, err
		}
		for d.pieceOff < p.Size {
			b := d.buf[:min(int64(len(d.buf)), p.Size-d.pieceOff)]
			n, err := f.ReadAt(b, p.Off+d.pieceOff)
			if n < len(b) {
				if err == nil || errors.Is(err, io.EOF) {
					err = fmt.Errorf("archive: segment %s of %s shrank while downloading: %w", d.files.segs[p.Src].ID(), d.files.camera, io.ErrUnexpectedEOF)
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
	for d.cur < len(d.pieces) && d.pieceOff == d.pieces[d.cur].Size {
		d.cur, d.pieceOff = d.cur+1, 0
	}
	if d.cur == len(d.pieces) {
		return 0, io.EOF
	}
	p := d.pieces[d.cur]
	f, err := d.open(p.Src)
	if err != nil {
		return 0, err
	}
	b = b[:min(int64(len(b)), p.Size-d.pieceOff)]
	n, err := f.ReadAt(b, p.Off+d.pieceOff)
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
func (d *Download) open(seg int32) (io.ReaderAt, error) {
	if d.cur > 0 && d.pieces[d.cur-1].Src != seg {
		d.files.release(int(d.pieces[d.cur-1].Src))
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
	segs := s.segmentsOf(ctx, camera, start, end)
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
		files: &segmentFiles{roots: s.roots, camera: camera, segs: segs, files: make([]io.ReaderAt, len(segs)),
			readHeld: func(sg Segment) ([]byte, error) { return s.readHeld(s.ctx, camera, sg) }},
	}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	m := &mp4.Muxer{}
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
	d.header, d.pieces, err = m.Finish(s.co64Above)
	if errors.Is(err, mp4.ErrNoSamples) {
		return nil, fmt.Errorf("%w: no samples of %s between %s and %s", ErrNotFound, camera,
			start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	if err != nil {
		return nil, fmt.Errorf("archive: download of %s: %w", camera, err)
	}
	ok = true
	return d, nil
}

// addSegment appends one segment's samples to the muxer; false when its
// tracks do not match the download's.
func (s *Store) addSegment(m *mp4.Muxer, files *segmentFiles, idx int, start, end time.Time, sound bool) (bool, error) {
	seg := files.segs[idx]
	f, err := files.get(idx)
	if err != nil {
		return false, err
	}
	defer files.keep(idx)
	same, err := m.AddSegment(f, seg.Size, int32(idx), len(files.segs)-idx, seg.Start.Sub(start), end.Sub(start), sound)
	if err != nil {
		return false, fmt.Errorf("archive: segment %s of %s: %w", seg.ID(), files.camera, err)
	}
	return same, nil
}
