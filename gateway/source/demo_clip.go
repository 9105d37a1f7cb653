package source

import (
	"bytes"
	_ "embed" // the demo clip
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// demoClipMP4 is made by demo/make-demo-clip.sh (the exact ffmpeg command).
//
//go:embed demo/clip.mp4
var demoClipMP4 []byte

// ErrBadClip is returned when the demo clip cannot be parsed.
var ErrBadClip = errors.New("demo clip")

// Media indexes in the demo description.
const (
	demoVideo = 0
	demoAudio = 1

	demoH264PayloadType = 96
	demoOpusPayloadType = 97
	demoH264ClockRate   = 90000
	demoOpusClockRate   = 48000
)

// demoPacket is one RTP payload of a frame, packetized once when the clip is
// loaded, so that playing it costs a header rewrite and nothing else.
type demoPacket struct {
	payload []byte
	marker  bool
}

// demoFrame is one access unit (H264) or one Opus frame, in sending order.
type demoFrame struct {
	media    int
	at       time.Duration // decode time from the clip start: when to send it
	ts       uint32        // RTP timestamp (presentation) from the clip start
	keyframe bool
	packets  []demoPacket
}

// demoClip is the parsed, packetized clip. It is immutable once built, so
// several Runs (and several demo cameras) can share it.
type demoClip struct {
	sps, pps []byte
	channels int
	// The loop length is lenNum/lenDen seconds, kept exact so that RTP
	// timestamps across thousands of loops do not drift.
	lenNum, lenDen uint64
	length         time.Duration
	frames         []demoFrame
}

type clipSample struct {
	dts       uint64
	ptsOffset int32
	payload   []byte
}

// parseDemoClip reads a fragmented MP4 holding one H264 and one Opus track.
func parseDemoClip(b []byte) (*demoClip, error) {
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: init: %w", ErrBadClip, err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: fragments: %w", ErrBadClip, err)
	}

	c := &demoClip{lenDen: 1}
	var video, audio *fmp4.InitTrack
	for _, t := range init.Tracks {
		switch codec := t.Codec.(type) {
		case *codecs.H264:
			video, c.sps, c.pps = t, codec.SPS, codec.PPS
		case *codecs.Opus:
			audio, c.channels = t, codec.ChannelCount
		}
	}
	if video == nil || audio == nil {
		return nil, fmt.Errorf("%w: needs an H264 and an Opus track", ErrBadClip)
	}

	for _, t := range []*fmp4.InitTrack{video, audio} {
		samples, end := trackSamples(parts, t.ID)
		if len(samples) == 0 {
			return nil, fmt.Errorf("%w: track %d has no samples", ErrBadClip, t.ID)
		}
		// The loop is as long as the longer track.
		if end*c.lenDen > c.lenNum*uint64(t.TimeScale) {
			c.lenNum, c.lenDen = end, uint64(t.TimeScale)
		}
		var err error
		if t == video {
			err = c.addVideo(samples, t.TimeScale)
		} else {
			err = c.addAudio(samples, t.TimeScale)
		}
		if err != nil {
			return nil, err
		}
	}
	c.length = time.Duration(c.lenNum * uint64(time.Second) / c.lenDen)
	if c.length <= 0 {
		// A zero-length loop would spin without ever waiting.
		return nil, fmt.Errorf("%w: zero duration", ErrBadClip)
	}
	// Send in decode order; on a tie video first, so a keyframe leads.
	slices.SortStableFunc(c.frames, func(a, b demoFrame) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.media - b.media
	})
	return c, nil
}

// trackSamples lists a track's samples with absolute decode times, and the
// track's end time, both in the track's time scale.
func trackSamples(parts fmp4.Parts, id int) ([]clipSample, uint64) {
	var out []clipSample
	var end uint64
	for _, p := range parts {
		for _, pt := range p.Tracks {
			if pt.ID != id {
				continue
			}
			dts := pt.BaseTime
			for _, s := range pt.Samples {
				out = append(out, clipSample{dts: dts, ptsOffset: s.PTSOffset, payload: s.Payload})
				dts += uint64(s.Duration)
			}
			end = max(end, dts)
		}
	}
	return out, end
}

func (c *demoClip) addVideo(samples []clipSample, timeScale uint32) error {
	enc, err := c.h264Format().CreateEncoder()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadClip, err)
	}
	for _, s := range samples {
		var au h264.AVCC
		if err := au.Unmarshal(s.payload); err != nil {
			return fmt.Errorf("%w: video sample at %d: %w", ErrBadClip, s.dts, err)
		}
		au, keyframe := withParameterSets(au, c.sps, c.pps)
		pkts, err := enc.Encode(au)
		if err != nil {
			return fmt.Errorf("%w: packetize video at %d: %w", ErrBadClip, s.dts, err)
		}
		f := demoFrame{
			media:    demoVideo,
			at:       scaleDuration(s.dts, timeScale),
			ts:       uint32(scaleTicks(uint64(int64(s.dts)+int64(s.ptsOffset)), timeScale, demoH264ClockRate)),
			keyframe: keyframe,
			packets:  make([]demoPacket, len(pkts)),
		}
		for i, p := range pkts {
			f.packets[i] = demoPacket{payload: p.Payload, marker: p.Marker}
		}
		c.frames = append(c.frames, f)
	}
	return nil
}

func (c *demoClip) addAudio(samples []clipSample, timeScale uint32) error {
	enc, err := c.opusFormat().CreateEncoder()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadClip, err)
	}
	for _, s := range samples {
		p, err := enc.Encode(s.payload)
		if err != nil {
			return fmt.Errorf("%w: packetize audio at %d: %w", ErrBadClip, s.dts, err)
		}
		c.frames = append(c.frames, demoFrame{
			media:   demoAudio,
			at:      scaleDuration(s.dts, timeScale),
			ts:      uint32(scaleTicks(s.dts, timeScale, demoOpusClockRate)),
			packets: []demoPacket{{payload: p.Payload, marker: p.Marker}},
		})
	}
	return nil
}

// withParameterSets reports whether au holds an IDR picture and, if it does
// without SPS and PPS in-band, returns it with them prepended: MP4 keeps them
// in the sample description only, and an RTSP/HLS/WebRTC reader that starts
// on this keyframe needs them right there.
func withParameterSets(au [][]byte, sps, pps []byte) ([][]byte, bool) {
	idr, hasSPS := false, false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeIDR:
			idr = true
		case h264.NALUTypeSPS:
			hasSPS = true
		}
	}
	if !idr || hasSPS {
		return au, idr
	}
	return append([][]byte{sps, pps}, au...), true
}

func (c *demoClip) h264Format() *format.H264 {
	return &format.H264{PayloadTyp: demoH264PayloadType, SPS: c.sps, PPS: c.pps, PacketizationMode: 1}
}

func (c *demoClip) opusFormat() *format.Opus {
	return &format.Opus{PayloadTyp: demoOpusPayloadType, ChannelCount: c.channels}
}

// description is built fresh per Run: the sink may keep and annotate it.
func (c *demoClip) description() *description.Session {
	return &description.Session{
		Title: "camgate demo",
		Medias: []*description.Media{
			{Type: description.MediaTypeVideo, Formats: []format.Format{c.h264Format()}},
			{Type: description.MediaTypeAudio, Formats: []format.Format{c.opusFormat()}},
		},
	}
}

// loopTicks is the RTP timestamp offset of loop n at clockRate, exact.
func (c *demoClip) loopTicks(n uint64, clockRate uint64) uint32 {
	return uint32(n * c.lenNum * clockRate / c.lenDen)
}

func scaleTicks(v uint64, from uint32, to uint64) uint64 {
	return v * to / uint64(from)
}

func scaleDuration(v uint64, timeScale uint32) time.Duration {
	return time.Duration(v * uint64(time.Second) / uint64(timeScale))
}
