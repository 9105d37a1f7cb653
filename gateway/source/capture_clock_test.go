package source

import (
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
)

// aacPacket is an RFC 3640 packet of n access units (AU-headers of 16 bits).
func aacPacket(ts uint32, n int) *rtp.Packet {
	p := []byte{byte(n * 16 >> 8), byte(n * 16)}
	for range n {
		p = append(p, 0, 8) // size 1, index 0
	}
	for range n {
		p = append(p, 0x21)
	}
	return &rtp.Packet{Header: rtp.Header{Timestamp: ts}, Payload: p}
}

func aacMedia() *description.Media {
	return &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.MPEG4Audio{
		PayloadTyp: 96, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3,
		Config: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 1},
	}}}
}

func videoMedia() *description.Media {
	return &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}}
}

// TestCaptureClockAggregatedAudio: a packet of 8 AAC frames leaves the
// camera when its last frame is captured; its first sample was captured
// 8 × 1024 samples (170.7 ms at 48 kHz) before it arrived. Placing it at its
// arrival made an HLS segment's audio start 186 ms after its video.
func TestCaptureClockAggregatedAudio(t *testing.T) {
	c := newCaptureClock(aacMedia())
	t0 := time.Unix(1000, 0)
	if got, want := c.at(aacPacket(0, 8), t0), t0.Add(-170666666*time.Nanosecond); got != want {
		t.Fatalf("first packet of 8 frames placed at %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	// The next one arrives 20 ms late: the RTP clock places it.
	if got, want := c.at(aacPacket(8*1024, 8), t0.Add(190*time.Millisecond)), t0; got != want {
		t.Fatalf("second packet placed at %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	g711 := newCaptureClock(&description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}}})
	if got, want := g711.at(&rtp.Packet{Payload: make([]byte, 1456)}, t0), t0.Add(-182*time.Millisecond); got != want {
		t.Fatalf("G.711 packet of 1456 samples placed at %v, want %v", got.Sub(t0), want.Sub(t0))
	}
}

// TestCaptureClockGatheredBurst: 200 ms of video packets handed over at once
// (a gathered read) are placed by the RTP clock from the one that waited
// least, the last: each keeps its own capture time, not the read's.
func TestCaptureClockGatheredBurst(t *testing.T) {
	c := newCaptureClock(videoMedia())
	t0 := time.Unix(1000, 0)
	c.at(&rtp.Packet{Header: rtp.Header{Timestamp: 0}}, t0) // un-gathered: on time
	read := t0.Add(240 * time.Millisecond)                  // frames at 40 … 200 ms, read at 240 ms
	for i := uint32(1); i <= 5; i++ {
		if got, want := c.at(&rtp.Packet{Header: rtp.Header{Timestamp: i * 3600}}, read), t0.Add(time.Duration(i)*40*time.Millisecond); got != want {
			t.Fatalf("frame %d placed at %v, want %v", i, got.Sub(t0), want.Sub(t0))
		}
	}
	// A burst first: the earliest frames are placed late until the last
	// one of the burst corrects the clock for what follows.
	c = newCaptureClock(videoMedia())
	for i := uint32(0); i <= 5; i++ {
		c.at(&rtp.Packet{Header: rtp.Header{Timestamp: i * 3600}}, read)
	}
	if got, want := c.at(&rtp.Packet{Header: rtp.Header{Timestamp: 6 * 3600}}, t0.Add(300*time.Millisecond)), read.Add(40*time.Millisecond); got != want {
		t.Fatalf("frame after the burst placed at %v, want %v", got.Sub(t0), want.Sub(t0))
	}
}

// TestCaptureClockFollowsArrivals: a camera whose RTP clock runs slow falls
// behind the arrivals; past reanchorAfter the clock is set from them again,
// and the 32-bit RTP timestamp wraps without a jump.
func TestCaptureClockFollowsArrivals(t *testing.T) {
	c := newCaptureClock(videoMedia())
	t0 := time.Unix(1000, 0)
	start := uint32(1<<32 - 3600)
	c.at(&rtp.Packet{Header: rtp.Header{Timestamp: start}}, t0)
	if got, want := c.at(&rtp.Packet{Header: rtp.Header{Timestamp: start + 7200}}, t0.Add(100*time.Millisecond)), t0.Add(80*time.Millisecond); got != want {
		t.Fatalf("after the wrap placed at %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	late := t0.Add(1500 * time.Millisecond)
	if got := c.at(&rtp.Packet{Header: rtp.Header{Timestamp: start + 10800}}, late); got != late {
		t.Fatalf("1.4 s behind its arrival: placed at %v, want the arrival %v", got.Sub(t0), late.Sub(t0))
	}
}

// BenchmarkCaptureClock is the clock's cost per packet on the upstream path.
func BenchmarkCaptureClock(b *testing.B) {
	c := newCaptureClock(aacMedia())
	pkt := aacPacket(0, 1)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		pkt.Timestamp = uint32(i * 1024)
		c.at(pkt, now.Add(time.Duration(i)*21333*time.Microsecond))
	}
}
