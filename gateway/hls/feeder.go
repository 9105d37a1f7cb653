package hls

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/gateway/stream"
)

// ErrNoPlayableTrack: the camera has no track HLS can carry (H264 video or
// Opus audio).
var ErrNoPlayableTrack = errors.New("no track playable over HLS")

// feedTrack depacketizes one media of a variant for the muxer.
type feedTrack struct {
	track *gohlslib.Track
	h264  *rtph264.Decoder
	opus  *rtpsimpleaudio.Decoder

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

// newTracks maps a variant's medias to muxer tracks.
func newTracks(desc *description.Session) ([]*feedTrack, []*gohlslib.Track, error) {
	fts := make([]*feedTrack, len(desc.Medias))
	var tracks []*gohlslib.Track
	hasVideo := false
	for i, m := range desc.Medias {
		if len(m.Formats) == 0 {
			continue
		}
		switch f := m.Formats[0].(type) {
		case *format.H264:
			if hasVideo {
				continue // gohlslib carries one video track
			}
			dec, err := f.CreateDecoder()
			if err != nil {
				continue
			}
			sps, pps := f.SafeParams()
			hasVideo = true
			fts[i] = &feedTrack{h264: dec, track: &gohlslib.Track{
				Codec:     &codecs.H264{SPS: clone(sps), PPS: clone(pps)},
				ClockRate: f.ClockRate(),
			}}
		case *format.Opus:
			dec, err := f.CreateDecoder()
			if err != nil {
				continue
			}
			fts[i] = &feedTrack{opus: dec, track: &gohlslib.Track{
				Codec:     &codecs.Opus{ChannelCount: max(f.ChannelCount, 1)},
				ClockRate: f.ClockRate(),
			}}
		default:
			continue
		}
		tracks = append(tracks, fts[i].track)
	}
	if len(tracks) == 0 {
		return nil, nil, fmt.Errorf("%w: %d medias", ErrNoPlayableTrack, len(desc.Medias))
	}
	return fts, tracks, nil
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
			t.pts = int64(off) * int64(t.track.ClockRate) / int64(time.Second)
		}
	} else {
		t.pts += int64(int32(ts - t.lastTS))
	}
	t.lastTS = ts
	return t.pts
}

func (f *feeder) write(t *feedTrack, ntp time.Time) error {
	pts := f.timestamp(t, ntp)
	if t.opus != nil {
		payload, err := t.opus.Decode(&f.pkt)
		if err != nil {
			return nil
		}
		return f.muxer.WriteOpus(t.track, ntp, pts, [][]byte{payload})
	}
	au, err := t.h264.Decode(&f.pkt)
	// The decoder returns an access unit when its last packet has the
	// marker bit, or when a packet with a new timestamp arrives (then the
	// unit is the previous one, and this packet starts the next).
	auPTS, auNTP := pts, ntp
	if t.pending && t.pendingTS != f.pkt.Timestamp {
		auPTS, auNTP = t.pendingPTS, t.pendingNTP
	}
	switch {
	case errors.Is(err, rtph264.ErrMorePacketsNeeded):
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
	return f.muxer.WriteH264(t.track, auNTP, auPTS, au)
}
