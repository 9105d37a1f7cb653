package source

import (
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// reanchorAfter is how late a packet may arrive after its estimated capture
// time before a media's clock is set again from arrivals: longer than any
// gathered read or network burst, so only a camera whose RTP clock runs slow
// (or a stall that lasted longer) moves it.
const reanchorAfter = time.Second

// captureClock estimates the wall-clock capture time of one media's packets
// on the gateway's clock. Consumers line tracks up by it: the recorder and
// the HLS muxers place each track by its first packet, and the RTSP edge's
// sender reports tell players how tracks line up.
//
// The camera's RTCP sender reports are not used: they time packets by the
// camera's clock, which is not the gateway's (nor, often, right), they come
// for each track separately, seconds after its first packet, and an origin
// that relays a camera (gortsplib's server, mediamtx without the
// publisher's reports) times them by their arrival there. Taking them as
// they came put a track timed by a report next to one timed by its arrival:
// under load an HLS segment's audio started 186 ms after its video. Like
// mediamtx's, the gateway's timeline comes from arrivals and RTP clocks.
//
// Nor is a packet's arrival its capture: an audio packet leaves the camera
// once its last sample is captured (ffmpeg packs up to 8 AAC frames, 170 ms,
// in one packet), and reads gathered while a camera is only recorded hand
// 200 ms of packets over at once. Tracks that consumers align by the time of
// their first packet would then start up to that far apart. The clock
// therefore places a packet's first sample at its arrival minus the media
// time the packet carries, advances by the RTP clock, and keeps the earliest
// such placement: the packet that waited least tells the capture time best.
//
// A clock belongs to one media; its packets arrive on one goroutine.
type captureClock struct {
	rate    int64                      // RTP clock rate
	samples func(payload []byte) int64 // media time a packet carries, in rate units; nil: none (video)

	started bool
	lastTS  uint32
	elapsed int64     // RTP units from the reference packet to the last one
	ref     time.Time // capture time of the reference packet's first sample
}

// newCaptureClock is the clock of a media's first format.
func newCaptureClock(m *description.Media) captureClock {
	if len(m.Formats) == 0 {
		return captureClock{}
	}
	f := m.Formats[0]
	c := captureClock{rate: int64(f.ClockRate())}
	switch f := f.(type) {
	case *format.MPEG4Audio:
		c.samples = aacSamples(f)
	case *format.G711:
		ch := int64(max(f.ChannelCount, 1))
		c.samples = func(p []byte) int64 { return int64(len(p)) / ch }
	case *format.LPCM:
		per := int64(max(f.ChannelCount, 1) * max(f.BitDepth/8, 1))
		c.samples = func(p []byte) int64 { return int64(len(p)) / per }
	}
	return c
}

// aacSamples counts the access units of an RFC 3640 packet from its
// AU-headers-length (1024 samples each).
func aacSamples(f *format.MPEG4Audio) func([]byte) int64 {
	first, next := f.SizeLength+f.IndexLength, f.SizeLength+f.IndexDeltaLength
	return func(p []byte) int64 {
		if f.SizeLength == 0 || next <= 0 || len(p) < 2 {
			return 1024
		}
		bits := int(p[0])<<8 | int(p[1])
		n := 1
		if bits > first {
			n += (bits - first) / next
		}
		return int64(min(n, 64)) * 1024
	}
}

// at is the estimated capture time of pkt's first sample, which arrived at
// now.
func (c *captureClock) at(pkt *rtp.Packet, now time.Time) time.Time {
	if c.rate <= 0 {
		c.started = true
		return now
	}
	placed := now
	if c.samples != nil {
		placed = now.Add(-c.duration(c.samples(pkt.Payload)))
	}
	if !c.started {
		c.started, c.lastTS, c.elapsed, c.ref = true, pkt.Timestamp, 0, placed
		return placed
	}
	c.elapsed += int64(int32(pkt.Timestamp - c.lastTS))
	c.lastTS = pkt.Timestamp
	est := c.ref.Add(c.duration(c.elapsed))
	if d := placed.Sub(est); d < 0 || d > reanchorAfter {
		// an earlier placement, or a clock fallen behind the arrivals
		c.ref, c.elapsed = placed, 0
		return placed
	}
	return est
}

// duration is n RTP units as a time span, without overflowing for streams
// that run for months.
func (c *captureClock) duration(n int64) time.Duration {
	return time.Duration(n/c.rate)*time.Second + time.Duration(n%c.rate)*time.Second/time.Duration(c.rate)
}
