package hls

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtplpcm"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/gateway/transcode"
	"github.com/camgate/camgate/internal/httpjson"
)

// ErrNoPlayableTrack: the camera has no video HLS can carry (H264 or H265).
// It is a 415 (the camera's media type, not a passing outage): players must
// not retry it every second.
var ErrNoPlayableTrack = fmt.Errorf("camera has no video HLS can carry (H264 or H265): %w", httpjson.ErrUnsupportedMediaType)

// feedTrack depacketizes one media of a variant for the muxer.
type feedTrack struct {
	track *gohlslib.Track
	h264  *rtph264.Decoder
	h265  *rtph265.Decoder
	opus  *rtpsimpleaudio.Decoder
	aac   *rtpmpeg4audio.Decoder
	// g711 audio goes through tc, the camera's transcoder, and comes out as
	// the AAC of track; inRate is the camera's clock (track's is AAC's).
	g711   *rtplpcm.Decoder
	tc     *transcode.Audio
	inRate int
	// params are the video's parameter sets (H264: SPS, PPS; H265: VPS,
	// SPS, PPS), from the SDP and then the last in-band ones: cameras that
	// send them only in the SDP get them prepended to random-access units,
	// which gohlslib needs in the stream.
	params [][]byte

	started bool
	lastTS  uint32
	pts     int64 // of the last packet, in the track's clock

	// the access unit the H264 decoder is still assembling
	pending    bool
	pendingTS  uint32
	pendingPTS int64
	pendingNTP time.Time
}

// maxTrackOffset bounds the start offset between tracks.
const maxTrackOffset = 5 * time.Second

// feeder turns one variant's RTP packets into muxer samples. It is owned by
// the muxer's feeding goroutine.
type feeder struct {
	muxer  *gohlslib.Muxer
	tracks []*feedTrack // by media index in the variant; nil: not carried
	origin time.Time    // wall-clock time of pts 0, shared by all tracks
	pkt    rtp.Packet
	onErr  func(error)
}

// trackPlan is how a variant's medias map to muxer tracks.
type trackPlan struct {
	feed   []*feedTrack // by media index; nil: not carried
	tracks []*gohlslib.Track
	// droppedAudio names the camera's audio codecs HLS players cannot decode
	// (G.711 without a transcoder, ...): the variant is served without them.
	droppedAudio []string
	// transcoded names the audio made playable by a transcoder ("G711").
	transcoded []string
}

// close stops the plan's transcoders.
func (p trackPlan) close() {
	for _, ft := range p.feed {
		if ft != nil && ft.tc != nil {
			ft.tc.Close()
		}
	}
}

// newTracks maps a variant's medias to muxer tracks: the first H264 or H265
// video, and AAC or Opus audio; G.711 audio becomes AAC when transcode
// gives a transcoder for it. A variant without such video is
// ErrNoPlayableTrack, even if its audio could be carried: an audio-only
// rendition of a camera is not what a viewer asked for. The caller closes
// the plan.
func newTracks(desc *description.Session, transcode func(*format.G711) (*transcode.Audio, error)) (trackPlan, error) {
	plan := trackPlan{feed: make([]*feedTrack, len(desc.Medias))}
	var video []string
	hasVideo := false
	for i, m := range desc.Medias {
		if len(m.Formats) == 0 {
			continue
		}
		ft := newFeedTrack(m.Formats[0], hasVideo)
		if g, ok := m.Formats[0].(*format.G711); ok && ft == nil && transcode != nil {
			ft = newTranscodedTrack(g, transcode)
			if ft != nil {
				plan.transcoded = append(plan.transcoded, g.Codec())
			}
		}
		switch {
		case ft != nil:
			hasVideo = hasVideo || ft.track.Codec.IsVideo()
			plan.feed[i] = ft
			plan.tracks = append(plan.tracks, ft.track)
		case m.Type == description.MediaTypeAudio:
			plan.droppedAudio = append(plan.droppedAudio, m.Formats[0].Codec())
		case m.Type == description.MediaTypeVideo:
			video = append(video, m.Formats[0].Codec())
		}
	}
	if !hasVideo {
		plan.close()
		if len(video) == 0 {
			return trackPlan{}, fmt.Errorf("%w: camera sends no video", ErrNoPlayableTrack)
		}
		return trackPlan{}, fmt.Errorf("%w: camera sends %s", ErrNoPlayableTrack, strings.Join(video, ", "))
	}
	return plan, nil
}

// newFeedTrack is the muxer track for a format, or nil when HLS cannot
// carry it (or, for a second video, gohlslib: it carries one video track).
func newFeedTrack(f format.Format, hasVideo bool) *feedTrack {
	switch f := f.(type) {
	case *format.H264:
		dec, err := f.CreateDecoder()
		if err != nil || hasVideo {
			return nil
		}
		sps, pps := f.SafeParams()
		return &feedTrack{h264: dec, params: [][]byte{clone(sps), clone(pps)}, track: &gohlslib.Track{
			Codec: &codecs.H264{SPS: clone(sps), PPS: clone(pps)}, ClockRate: f.ClockRate(),
		}}
	case *format.H265:
		dec, err := f.CreateDecoder()
		if err != nil || hasVideo {
			return nil
		}
		vps, sps, pps := f.SafeParams()
		return &feedTrack{h265: dec, params: [][]byte{clone(vps), clone(sps), clone(pps)}, track: &gohlslib.Track{
			Codec: &codecs.H265{VPS: clone(vps), SPS: clone(sps), PPS: clone(pps)}, ClockRate: f.ClockRate(),
		}}
	case *format.Opus:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil
		}
		return &feedTrack{opus: dec, track: &gohlslib.Track{
			Codec: &codecs.Opus{ChannelCount: max(f.ChannelCount, 1)}, ClockRate: f.ClockRate(),
		}}
	case *format.MPEG4Audio:
		if f.Config == nil {
			return nil
		}
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil
		}
		return &feedTrack{aac: dec, track: &gohlslib.Track{
			Codec: &codecs.MPEG4Audio{Config: *f.Config}, ClockRate: f.ClockRate(),
		}}
	}
	return nil
}

// newTranscodedTrack is the AAC track a camera's G.711 becomes, or nil when
// no transcoder can be had (the audio is then dropped, and said so).
func newTranscodedTrack(f *format.G711, transcode func(*format.G711) (*transcode.Audio, error)) *feedTrack {
	dec, err := f.CreateDecoder()
	if err != nil {
		return nil
	}
	tc, err := transcode(f)
	if err != nil || tc == nil {
		return nil
	}
	return &feedTrack{g711: dec, tc: tc, inRate: f.SampleRate, track: &gohlslib.Track{
		Codec: &codecs.MPEG4Audio{Config: tc.AACConfig()}, ClockRate: tc.ClockRate(),
	}}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// writeBatch depacketizes a batch. The stream's packets are reused once the
// batch returns, while the H264 decoder keeps fragments across packets and
// gohlslib keeps SPS/PPS and the previous sample: so the batch is first
// copied into one fresh buffer (one allocation per batch, not per packet).
func (f *feeder) writeBatch(batch []*stream.Packet) {
	size := 0
	for _, p := range batch {
		size += len(p.Buf)
	}
	own := make([]byte, size)
	off := 0
	for _, p := range batch {
		buf := own[off : off+len(p.Buf) : off+len(p.Buf)]
		off += copy(buf, p.Buf)
		if p.Media < 0 || p.Media >= len(f.tracks) || f.tracks[p.Media] == nil {
			continue
		}
		if err := f.pkt.Unmarshal(buf); err != nil {
			continue
		}
		ntp := p.NTP
		if ntp.IsZero() {
			ntp = time.Now()
		}
		if err := f.write(f.tracks[p.Media], ntp); err != nil {
			f.onErr(err)
		}
	}
	f.drainTranscoded()
}

// timestamp unwraps the packet's RTP timestamp into the track's pts. Tracks
// start at their wall-clock offset from the first packet of any track, so
// audio and video stay in sync; after that RTP timestamps alone count.
func (f *feeder) timestamp(t *feedTrack, ntp time.Time) int64 {
	ts := f.pkt.Timestamp
	if !t.started {
		if f.origin.IsZero() {
			f.origin = ntp
		}
		t.started = true
		t.pts = 0
		// Capture clocks of different tracks that disagree by more than
		// this are not worth trusting for lip sync.
		if off := ntp.Sub(f.origin); off > -maxTrackOffset && off < maxTrackOffset {
			t.pts = int64(off) * int64(t.clockRate()) / int64(time.Second)
		}
	} else {
		t.pts += int64(int32(ts - t.lastTS))
	}
	t.lastTS = ts
	return t.pts
}

// clockRate is the clock of the track's RTP timestamps.
func (t *feedTrack) clockRate() int {
	if t.inRate > 0 {
		return t.inRate
	}
	return t.track.ClockRate
}

// drainTranscoded writes what the transcoders have ready. Frames carry the
// camera's timeline (pts from the same origin as the other tracks).
func (f *feeder) drainTranscoded() {
	for _, t := range f.tracks {
		if t == nil || t.tc == nil {
			continue
		}
		t.tc.Drain(func(fr transcode.Frame) {
			ntp := f.origin.Add(time.Duration(fr.PTS) * time.Second / time.Duration(t.track.ClockRate))
			if err := f.muxer.WriteMPEG4Audio(t.track, ntp, fr.PTS, [][]byte{fr.AU}); err != nil {
				f.onErr(err)
			}
		})
	}
}

func (f *feeder) write(t *feedTrack, ntp time.Time) error {
	pts := f.timestamp(t, ntp)
	switch {
	case t.g711 != nil:
		samples, err := t.g711.Decode(&f.pkt)
		if err == nil {
			t.tc.Write(pts, samples)
		}
		return nil
	case t.opus != nil:
		payload, err := t.opus.Decode(&f.pkt)
		if err != nil {
			return nil
		}
		return f.muxer.WriteOpus(t.track, ntp, pts, [][]byte{payload})
	case t.aac != nil:
		aus, err := t.aac.Decode(&f.pkt)
		if err != nil || len(aus) == 0 {
			return nil // fragmented AU not complete yet, or a lost fragment
		}
		return f.muxer.WriteMPEG4Audio(t.track, ntp, pts, aus)
	}
	var au [][]byte
	var err error
	if t.h265 != nil {
		au, err = t.h265.Decode(&f.pkt)
	} else {
		au, err = t.h264.Decode(&f.pkt)
	}
	// The decoder returns an access unit when its last packet has the
	// marker bit, or when a packet with a new timestamp arrives (then the
	// unit is the previous one, and this packet starts the next).
	auPTS, auNTP := pts, ntp
	if t.pending && t.pendingTS != f.pkt.Timestamp {
		auPTS, auNTP = t.pendingPTS, t.pendingNTP
	}
	switch {
	case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtph265.ErrMorePacketsNeeded):
		t.pending, t.pendingTS, t.pendingPTS, t.pendingNTP = true, f.pkt.Timestamp, pts, ntp
		return nil
	case err != nil:
		t.pending = false
		return nil // a lost fragment or a join mid-unit: resume at the next unit
	}
	if t.pending && t.pendingTS != f.pkt.Timestamp {
		t.pending, t.pendingTS, t.pendingPTS, t.pendingNTP = true, f.pkt.Timestamp, pts, ntp
	} else {
		t.pending = false
	}
	if len(au) == 0 {
		return nil
	}
	au = t.withParams(au)
	if t.h265 != nil {
		return f.muxer.WriteH265(t.track, auNTP, auPTS, au)
	}
	return f.muxer.WriteH264(t.track, auNTP, auPTS, au)
}

// withParams remembers the in-band parameter sets of au, and prepends the
// known ones to a random-access unit that has none.
func (t *feedTrack) withParams(au [][]byte) [][]byte {
	has := false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if i := t.paramIndex(n); i >= 0 {
			has = true
			if !bytes.Equal(t.params[i], n) {
				t.params[i] = clone(n)
			}
		}
	}
	if has {
		return au
	}
	random := false
	if t.h265 != nil {
		random = h265.IsRandomAccess(au)
	} else {
		random = h264.IsRandomAccess(au)
	}
	if !random {
		return au
	}
	out := make([][]byte, 0, len(t.params)+len(au))
	for _, p := range t.params {
		if len(p) > 0 {
			out = append(out, p)
		}
	}
	return append(out, au...)
}

// paramIndex is n's index in params, or -1 when n is not a parameter set.
func (t *feedTrack) paramIndex(n []byte) int {
	if t.h265 != nil {
		if len(n) < 2 {
			return -1
		}
		switch h265.NALUType((n[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			return 0
		case h265.NALUType_SPS_NUT:
			return 1
		case h265.NALUType_PPS_NUT:
			return 2
		}
		return -1
	}
	switch h264.NALUType(n[0] & 0x1f) {
	case h264.NALUTypeSPS:
		return 0
	case h264.NALUTypePPS:
		return 1
	}
	return -1
}
