package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/internal/httpjson"
)

// Recordings is what a snapshot from the recording needs of the archive
// store.
type Recordings interface {
	// Footage lists the segments overlapping [start, end), held by this
	// node or, in a cluster, by another.
	Footage(ctx context.Context, camera string, start, end time.Time) []archive.Segment
	WriteSegmentInit(w io.WriteSeeker, camera string, seg archive.Segment, audio bool) error
	WriteSegmentMedia(w io.WriteSeeker, camera string, seg archive.Segment, audio bool) error
}

// maxRecordedEntries bounds each of the two caches of recorded snapshots
// (keyframe times per segment, JPEG per keyframe).
const maxRecordedEntries = 256

// ErrNoRecording: no recorded segment covers the instant asked for.
var ErrNoRecording = fmt.Errorf("%w: no recording covers this instant", httpjson.ErrNotFound)

// recordedKey is one segment's keyframes: their recording times, in order.
type recordedKeys struct {
	times []time.Time
}

// Recorded returns a JPEG of the recorded keyframe at or before at (the
// first one of the segment when at is before it), from the segment that
// covers at. allow decides the keyframe's own recording time before
// anything is decoded: the footage shown is the keyframe's, which may lie
// before a footage window that at is inside. A recording never changes, so
// its JPEGs are cached per segment and keyframe.
func (s *Service) Recorded(ctx context.Context, camera string, at time.Time, allow func(footage time.Time) error) (Image, error) {
	if s.Recordings == nil {
		return Image{}, fmt.Errorf("camera %s: %w", camera, ErrNoRecording)
	}
	var seg archive.Segment
	found := false
	for _, sg := range s.Recordings.Footage(ctx, camera, at, at.Add(time.Nanosecond)) {
		if !sg.Start.After(at) && at.Before(sg.End()) {
			seg, found = sg, true
		}
	}
	if !found {
		return Image{}, fmt.Errorf("camera %s at %s: %w", camera, at.UTC().Format(time.RFC3339Nano), ErrNoRecording)
	}
	segKey := camera + "\x00" + seg.ID() + "\x00" + strconv.FormatInt(seg.Size, 10)
	keys, err := s.recordedKeys(segKey, camera, seg)
	if err != nil {
		return Image{}, err
	}
	i := 0
	for j, t := range keys.times {
		if !t.After(at) {
			i = j
		}
	}
	taken := keys.times[i]
	if err := allow(taken); err != nil {
		return Image{}, err
	}
	key := segKey + "\x00" + strconv.Itoa(i)
	s.mu.Lock()
	e := s.recorded[key]
	s.mu.Unlock()
	if e != nil {
		return e.img, nil
	}
	v, err, _ := s.flight.Do("rec\x00"+key, func() (any, error) {
		_, kfs, err := s.readSegment(camera, seg)
		if err != nil {
			return nil, err
		}
		if i >= len(kfs) {
			return nil, fmt.Errorf("camera %s: segment %s changed: %w", camera, seg.ID(), ErrNoKeyframe)
		}
		jpeg, err := s.Decoder.Decode(context.WithoutCancel(ctx), kfs[i])
		if err != nil {
			return nil, err
		}
		e := &entry{img: Image{JPEG: jpeg, Taken: taken, Source: "archive"}}
		s.mu.Lock()
		putBounded(s.recorded, key, e)
		s.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return Image{}, fmt.Errorf("camera %s: %w", camera, err)
	}
	return v.(*entry).img, nil
}

// recordedKeys returns the keyframe times of a segment, reading it once.
func (s *Service) recordedKeys(segKey, camera string, seg archive.Segment) (*recordedKeys, error) {
	s.mu.Lock()
	k := s.segKeys[segKey]
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	v, err, _ := s.flight.Do("keys\x00"+segKey, func() (any, error) {
		times, _, err := s.readSegment(camera, seg)
		if err != nil {
			return nil, err
		}
		k := &recordedKeys{times: times}
		s.mu.Lock()
		if len(s.segKeys) >= maxRecordedEntries {
			for k := range s.segKeys {
				delete(s.segKeys, k)
				break
			}
		}
		s.segKeys[segKey] = k
		s.mu.Unlock()
		return k, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*recordedKeys), nil
}

func putBounded(m map[string]*entry, key string, e *entry) {
	if len(m) >= maxRecordedEntries {
		for k := range m { // any one: recordings are asked for at random
			delete(m, k)
			break
		}
	}
	m[key] = e
}

// readSegment reads a segment's video track and returns its keyframes
// (sync samples) with their recording times.
func (s *Service) readSegment(camera string, seg archive.Segment) ([]time.Time, []Keyframe, error) {
	var initBuf, mediaBuf seekablebuffer.Buffer
	if err := s.Recordings.WriteSegmentInit(&initBuf, camera, seg, false); err != nil {
		return nil, nil, err
	}
	if err := s.Recordings.WriteSegmentMedia(&mediaBuf, camera, seg, false); err != nil {
		return nil, nil, err
	}
	return keyframesOf(initBuf.Bytes(), mediaBuf.Bytes(), seg.Start)
}

// keyframesOf finds the sync samples of the first H264/H265 track of a
// segment (init and media sections) and turns each into an Annex-B
// keyframe with the track's parameter sets. Times are start plus the
// sample's decode time from the track's first.
func keyframesOf(initB, mediaB []byte, start time.Time) ([]time.Time, []Keyframe, error) {
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(initB)); err != nil {
		return nil, nil, fmt.Errorf("%w: recording init: %w", ErrNoKeyframe, err)
	}
	var (
		track  *fmp4.InitTrack
		codec  Codec
		params [][]byte
		typeOf func([]byte) int
	)
	for _, t := range init.Tracks {
		switch c := t.Codec.(type) {
		case *codecs.H264:
			track, codec, params, typeOf = t, CodecH264, [][]byte{c.SPS, c.PPS}, h264Type
		case *codecs.H265:
			track, codec, params, typeOf = t, CodecH265, [][]byte{c.VPS, c.SPS, c.PPS}, h265Type
		default:
			continue
		}
		break
	}
	if track == nil || track.TimeScale == 0 {
		return nil, nil, fmt.Errorf("recording: %w", ErrUnsupportedCodec)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(mediaB); err != nil {
		return nil, nil, fmt.Errorf("%w: recording fragments: %w", ErrNoKeyframe, err)
	}
	var (
		times []time.Time
		kfs   []Keyframe
		first uint64
		seen  bool
	)
	for _, p := range parts {
		for _, pt := range p.Tracks {
			if pt.ID != track.ID {
				continue
			}
			if !seen {
				first, seen = pt.BaseTime, true
			}
			dts := pt.BaseTime
			for _, smp := range pt.Samples {
				if !smp.IsNonSyncSample {
					var au h264.AVCC
					if err := au.Unmarshal(smp.Payload); err == nil {
						if kf, err := annexB(codec, withParams(au, typeOf, params)); err == nil {
							ticks := dts - min(first, dts)
							times = append(times, start.Add(time.Duration(ticks/uint64(track.TimeScale))*time.Second+
								time.Duration(ticks%uint64(track.TimeScale))*time.Second/time.Duration(track.TimeScale)))
							kfs = append(kfs, kf)
						}
					}
				}
				dts += uint64(smp.Duration)
			}
		}
	}
	if len(kfs) == 0 {
		return nil, nil, fmt.Errorf("recording: %w", ErrNoKeyframe)
	}
	return times, kfs, nil
}
