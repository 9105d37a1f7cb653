package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/camgate/camgate/archive/mp4"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// Track describes one recorded track.
type Track struct {
	// Codec carries the codec parameters (SPS/PPS, audio config).
	Codec codecs.Codec
	// ClockRate is the track's time scale: the unit of Sample.DTS.
	ClockRate uint32
}

// Sample is one access unit handed to a Writer.
type Sample struct {
	// DTS is the decode time in the track's clock units, on a timeline
	// shared by every track of the Writer (so tracks stay in sync). It must
	// not decrease within a track.
	DTS int64
	// PTSOffset is PTS - DTS (B-frames), in clock units.
	PTSOffset int32
	// Sync marks a sample a decoder can start from (video keyframe; every
	// audio sample).
	Sync bool
	// Payload is the sample (AVCC for H264/H265). It is copied.
	Payload []byte
	// NALUs, when set instead of Payload, are the NAL units of an H264 or
	// H265 access unit: the writer stores them as AVCC (each after its
	// 4-byte length), copying them once, without an AVCC buffer between.
	NALUs [][]byte
	// Pieces and PieceCounts, when set instead, are the NAL units in
	// pieces: NAL unit k is the next PieceCounts[k] pieces joined (a NAL
	// unit that came in RTP fragments, each still in its packet). They are
	// written as AVCC the same way, without being joined first.
	Pieces      [][]byte
	PieceCounts []int
	// NTP is the wall-clock capture time; the first sample anchors the
	// recording on the wall clock.
	NTP time.Time
}

// pendingSample waits for its successor, which gives its duration. Its
// payload is the tail of its track's data, after the part's samples.
type pendingSample struct {
	dts       int64
	ptsOffset int32
	sync      bool
	size      int
	present   bool
}

type writerTrack struct {
	init    *fmp4.InitTrack
	pending pendingSample
	// The current part: its samples, the base time of the first, and
	// their payloads: the first partBytes bytes of data (the pending
	// payload follows).
	samples   []partSample
	baseTime  uint64
	data      partData
	partBytes int
}

// Writer records one camera's samples as a sequence of fMP4 segments. It is
// not safe for concurrent use: one goroutine (the recorder's reader) feeds it.
type Writer struct {
	store  *Store
	camera string
	dir    *os.Root // the camera's folder
	tracks []*writerTrack
	video  bool // the writer has a video track: segments start on its keyframes

	// Wall-clock anchor: the timeline instant 0 is wall0.
	wall0    time.Time
	anchored bool

	seg         *segmentFile // current segment, nil between segments
	partBuf     []byte       // moof and mdat header of the part being written
	iov         [][]byte     // what one part's writev writes
	init        []byte       // marshalled init (the tracks do not change), made by the first segment
	initMvhdDur int64
	fingerprint uint64
	closed      bool
}

// segmentFile is a segment being written.
type segmentFile struct {
	start     time.Duration // timeline start
	startWall time.Time
	name      string
	f         *os.File
	size      int64
	mvhdDur   int64 // offset of mvhd's duration field, patched on close
	partStart time.Duration
	seq       uint32
	end       time.Duration // timeline end of what was written
	open      bool          // some part is waiting to be written
}

// NewWriter starts recording camera with the given tracks (track index =
// position in tracks). The first segment file appears with the first
// complete part.
func (s *Store) NewWriter(camera string, tracks []Track) (*Writer, error) {
	if err := checkName("camera", camera); err != nil {
		return nil, err
	}
	if len(tracks) == 0 {
		return nil, fmt.Errorf("%w: no tracks to record", ErrBadRequest)
	}
	if s.root == nil {
		return nil, ErrClosed
	}
	w := &Writer{store: s, camera: camera}
	for i, t := range tracks {
		if t.Codec == nil || t.ClockRate == 0 {
			return nil, fmt.Errorf("%w: track %d has no codec or clock rate", ErrBadRequest, i)
		}
		w.tracks = append(w.tracks, &writerTrack{init: &fmp4.InitTrack{ID: i + 1, TimeScale: t.ClockRate, Codec: t.Codec}})
		w.video = w.video || t.Codec.IsVideo()
	}
	if err := s.root.MkdirAll(camera, 0o755); err != nil {
		return nil, fmt.Errorf("archive: create camera folder: %w", err)
	}
	// The camera's folder stays open: each segment is then one openat,
	// not a walk from the archive's root.
	dir, err := s.root.OpenRoot(camera)
	if err != nil {
		return nil, fmt.Errorf("archive: open camera folder: %w", err)
	}
	w.dir = dir
	return w, nil
}

// WriteSample adds one sample of track i.
func (w *Writer) WriteSample(i int, s Sample) error {
	if w.closed {
		return ErrClosed
	}
	if i < 0 || i >= len(w.tracks) {
		return fmt.Errorf("%w: track %d out of range", ErrBadRequest, i)
	}
	t := w.tracks[i]
	if !w.anchored {
		w.wall0 = s.NTP.Add(-mp4.FromTicks(s.DTS, t.init.TimeScale))
		w.anchored = true
	}
	if t.pending.present && s.DTS < t.pending.dts {
		s.DTS = t.pending.dts // a decreasing DTS would give a negative duration
	}
	prev := t.pending
	size := len(s.Payload)
	switch {
	case s.PieceCounts != nil:
		size = 0
		pieces := s.Pieces
		for _, c := range s.PieceCounts {
			if c > len(pieces) {
				return fmt.Errorf("%w: sample has fewer pieces than its counts", ErrBadRequest)
			}
			n := 0
			for _, pc := range pieces[:c] {
				n += len(pc)
			}
			var l [4]byte
			binary.BigEndian.PutUint32(l[:], uint32(n))
			t.data.append(&w.store.chunks, l[:])
			for _, pc := range pieces[:c] {
				t.data.append(&w.store.chunks, pc)
			}
			pieces = pieces[c:]
			size += 4 + n
		}
	case s.NALUs != nil:
		size = 0
		for _, n := range s.NALUs {
			var l [4]byte
			binary.BigEndian.PutUint32(l[:], uint32(len(n)))
			t.data.append(&w.store.chunks, l[:])
			t.data.append(&w.store.chunks, n)
			size += 4 + len(n)
		}
	default:
		t.data.append(&w.store.chunks, s.Payload)
	}
	t.pending = pendingSample{dts: s.DTS, ptsOffset: s.PTSOffset, sync: s.Sync, size: size, present: true}
	at := mp4.FromTicks(s.DTS, t.init.TimeScale)
	if w.seg == nil {
		w.startSegment(at)
	}
	if prev.present {
		w.appendSample(t, prev, uint32(s.DTS-prev.dts))
	}
	// A segment is cut where a decoder can start: on a video keyframe
	// (any sample when there is no video).
	if s.Sync && (!w.video || t.init.Codec.IsVideo()) && at-w.seg.start >= w.store.SegmentDuration {
		if err := w.closeSegment(); err != nil {
			return err
		}
		w.startSegment(w.nextStart())
	} else if w.seg.end-w.seg.partStart >= w.store.PartDuration {
		if err := w.flushPart(); err != nil {
			return err
		}
	}
	return nil
}

// nextStart is the earliest pending sample, so no track of the new segment
// gets a negative base time.
func (w *Writer) nextStart() time.Duration {
	first := true
	var start time.Duration
	for _, t := range w.tracks {
		if !t.pending.present {
			continue
		}
		d := mp4.FromTicks(t.pending.dts, t.init.TimeScale)
		if first || d < start {
			start, first = d, false
		}
	}
	return start
}

func (w *Writer) startSegment(at time.Duration) {
	wall := w.wall0.Add(at)
	w.seg = &segmentFile{start: at, startWall: wall, name: SegmentName(wall), partStart: at, end: at}
}

// appendSample moves the track's previous pending sample p (its payload at
// data[partBytes:partBytes+p.size]) into the current part.
func (w *Writer) appendSample(t *writerTrack, p pendingSample, dur uint32) {
	seg := w.seg
	at := mp4.FromTicks(p.dts, t.init.TimeScale)
	if at < seg.start {
		at = seg.start // late sample of the previous segment: keep it, base time must not be negative
		p.dts = mp4.ToTicks(seg.start, t.init.TimeScale)
	}
	if len(t.samples) == 0 {
		t.baseTime = uint64(p.dts - mp4.ToTicks(seg.start, t.init.TimeScale))
	}
	t.samples = append(t.samples, partSample{duration: dur, size: uint32(p.size), ptsOffset: p.ptsOffset, nonSync: !p.sync})
	t.partBytes += p.size
	seg.open = true
	if end := at + mp4.FromTicks(int64(dur), t.init.TimeScale); end > seg.end {
		seg.end = end
	}
}

// flushPart writes the samples gathered since the last part as one
// moof+mdat, creating the segment file (with its init) on the first part.
func (w *Writer) flushPart() error {
	seg := w.seg
	if !seg.open {
		return nil
	}
	if seg.f == nil {
		if err := w.createFile(); err != nil {
			return err
		}
	}
	w.partBuf = appendPartHeader(w.partBuf[:0], seg.seq, w.tracks)
	seg.seq++
	err := w.writePart(seg.f)
	for _, t := range w.tracks {
		// The pending sample's payload is the start of the next part.
		t.data.drop(&w.store.chunks, t.partBytes)
		t.partBytes, t.samples = 0, t.samples[:0]
	}
	if err != nil {
		return fmt.Errorf("archive: write segment %s/%s: %w", w.camera, seg.name, err)
	}
	seg.partStart = seg.end
	seg.open = false
	return nil
}

// writePart writes the part's header and every track's payloads, in one
// writev where there is one.
func (w *Writer) writePart(f *os.File) error {
	w.iov = append(w.iov[:0], w.partBuf)
	for _, t := range w.tracks {
		w.iov = t.data.appendBuffers(w.iov, t.partBytes)
	}
	n, err := writeAll(f, w.iov)
	clear(w.iov)
	w.seg.size += n
	return err
}

// writeEach writes bufs one Write at a time.
func writeEach(f *os.File, bufs [][]byte) (int64, error) {
	var total int64
	for _, b := range bufs {
		n, err := f.Write(b)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (w *Writer) createFile() error {
	seg := w.seg
	if w.init == nil {
		var buf seekablebuffer.Buffer
		init := fmp4.Init{}
		for _, t := range w.tracks {
			init.Tracks = append(init.Tracks, t.init)
		}
		if err := init.Marshal(&buf); err != nil {
			return fmt.Errorf("archive: marshal init: %w", err)
		}
		off, err := mvhdDurationOffset(buf.Bytes())
		if err != nil {
			return err
		}
		w.init, w.initMvhdDur, w.fingerprint = buf.Bytes(), off, mp4.TracksFingerprint(buf.Bytes())
	}
	b, off := w.init, w.initMvhdDur
	f, err := w.dir.OpenFile(seg.name+segmentExt, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("archive: create segment: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("archive: write segment init: %w", err)
	}
	seg.f, seg.size, seg.mvhdDur = f, int64(len(b)), off
	return nil
}

// closeSegment writes what is left, records the duration in mvhd (as
// mediamtx does, for players that read it), syncs and indexes the segment.
func (w *Writer) closeSegment() error {
	seg := w.seg
	err := w.flushPart()
	w.seg = nil
	if seg.f == nil {
		return err
	}
	dur := seg.end - seg.start
	var ms [4]byte
	v := uint32(dur / time.Millisecond)
	ms[0], ms[1], ms[2], ms[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	if _, e := seg.f.WriteAt(ms[:], seg.mvhdDur); e != nil && err == nil {
		err = e
	}
	if e := seg.f.Sync(); e != nil && err == nil {
		err = e
	}
	if e := seg.f.Close(); e != nil && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("archive: close segment %s/%s: %w", w.camera, seg.name, err)
	}
	sg := Segment{Start: seg.startWall, Duration: dur, Size: seg.size, stem: seg.startWall.UnixMicro(), tracks: w.fingerprint}
	w.store.index.add(w.camera, sg)
	w.store.afterSegment(w.camera, sg)
	return nil
}

// Close ends the current segment (pending samples without a successor are
// written with the duration of their predecessor) and indexes it.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	defer w.dir.Close()
	if w.seg == nil {
		return nil
	}
	for _, t := range w.tracks {
		if t.pending.present {
			p := t.pending
			t.pending.present = false
			var dur uint32
			if len(t.samples) > 0 {
				dur = t.samples[len(t.samples)-1].duration
			}
			w.appendSample(t, p, dur)
		}
	}
	return w.closeSegment()
}

// mvhdDurationOffset finds mvhd's 32-bit duration in a marshalled init
// (ftyp, moov{mvhd v0, ...}).
func mvhdDurationOffset(b []byte) (int64, error) {
	ftyp, err := mp4.At(b, 0)
	if err != nil || ftyp.Type != "ftyp" {
		return 0, errors.New("archive: init has no ftyp")
	}
	moov, err := mp4.At(b, ftyp.Size)
	if err != nil || moov.Type != "moov" {
		return 0, errors.New("archive: init has no moov")
	}
	mvhd, err := mp4.At(b, ftyp.Size+8)
	if err != nil || mvhd.Type != "mvhd" || len(b) < int(ftyp.Size+8+28) || b[ftyp.Size+16] != 0 {
		return 0, errors.New("archive: init has no version 0 mvhd")
	}
	// header 8, version+flags 4, creation 4, modification 4, timescale 4
	return ftyp.Size + 8 + 24, nil
}
