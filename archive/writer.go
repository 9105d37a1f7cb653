package archive

import (
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
	// NTP is the wall-clock capture time; the first sample anchors the
	// recording on the wall clock.
	NTP time.Time
}

// pendingSample waits for its successor, which gives its duration.
type pendingSample struct {
	dts     int64
	sample  fmp4.Sample
	present bool
}

type writerTrack struct {
	init    *fmp4.InitTrack
	pending pendingSample
	part    *fmp4.PartTrack // samples of the current part, nil when none
}

// Writer records one camera's samples as a sequence of fMP4 segments. It is
// not safe for concurrent use: one goroutine (the recorder's reader) feeds it.
type Writer struct {
	store  *Store
	camera string
	tracks []*writerTrack
	video  bool // the writer has a video track: segments start on its keyframes

	// Wall-clock anchor: the timeline instant 0 is wall0.
	wall0    time.Time
	anchored bool

	seg         *segmentFile // current segment, nil between segments
	partBuf     seekablebuffer.Buffer
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
	t.pending = pendingSample{dts: s.DTS, present: true, sample: fmp4.Sample{
		PTSOffset:       s.PTSOffset,
		IsNonSyncSample: !s.Sync,
		Payload:         append([]byte(nil), s.Payload...),
	}}
	at := mp4.FromTicks(s.DTS, t.init.TimeScale)
	if w.seg == nil {
		w.startSegment(at)
	}
	if prev.present {
		prev.sample.Duration = uint32(s.DTS - prev.dts)
		w.appendSample(t, prev)
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

func (w *Writer) appendSample(t *writerTrack, p pendingSample) {
	seg := w.seg
	at := mp4.FromTicks(p.dts, t.init.TimeScale)
	if at < seg.start {
		at = seg.start // late sample of the previous segment: keep it, base time must not be negative
		p.dts = mp4.ToTicks(seg.start, t.init.TimeScale)
	}
	if t.part == nil {
		t.part = &fmp4.PartTrack{ID: t.init.ID, BaseTime: uint64(p.dts - mp4.ToTicks(seg.start, t.init.TimeScale))}
	}
	s := p.sample
	t.part.Samples = append(t.part.Samples, &s)
	seg.open = true
	if end := at + mp4.FromTicks(int64(s.Duration), t.init.TimeScale); end > seg.end {
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
	part := fmp4.Part{SequenceNumber: seg.seq}
	for _, t := range w.tracks {
		if t.part != nil {
			part.Tracks = append(part.Tracks, t.part)
			t.part = nil
		}
	}
	seg.seq++
	w.partBuf.Reset()
	if err := part.Marshal(&w.partBuf); err != nil {
		return fmt.Errorf("archive: marshal part: %w", err)
	}
	n, err := seg.f.Write(w.partBuf.Bytes())
	seg.size += int64(n)
	if err != nil {
		return fmt.Errorf("archive: write segment %s/%s: %w", w.camera, seg.name, err)
	}
	seg.partStart = seg.end
	seg.open = false
	return nil
}

func (w *Writer) createFile() error {
	seg := w.seg
	var buf seekablebuffer.Buffer
	init := fmp4.Init{}
	for _, t := range w.tracks {
		init.Tracks = append(init.Tracks, t.init)
	}
	if err := init.Marshal(&buf); err != nil {
		return fmt.Errorf("archive: marshal init: %w", err)
	}
	b := buf.Bytes()
	off, err := mvhdDurationOffset(b)
	if err != nil {
		return err
	}
	f, err := w.store.root.OpenFile(w.camera+"/"+seg.name+segmentExt, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("archive: create segment: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("archive: write segment init: %w", err)
	}
	seg.f, seg.size, seg.mvhdDur = f, int64(len(b)), off
	w.fingerprint = mp4.TracksFingerprint(b)
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
	w.store.index.add(w.camera, Segment{Start: seg.startWall, Duration: dur, Size: seg.size, name: seg.name + segmentExt, tracks: w.fingerprint})
	w.store.afterSegment()
	return nil
}

// Close ends the current segment (pending samples without a successor are
// written with the duration of their predecessor) and indexes it.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.seg == nil {
		return nil
	}
	for _, t := range w.tracks {
		if t.pending.present {
			p := t.pending
			t.pending.present = false
			if t.part != nil && len(t.part.Samples) > 0 {
				p.sample.Duration = t.part.Samples[len(t.part.Samples)-1].Duration
			}
			w.appendSample(t, p)
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
