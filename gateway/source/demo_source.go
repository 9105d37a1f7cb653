package source

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pion/rtp"
)

// Demo plays the embedded clip (H264 + Opus, about 10 s) in a loop, paced in
// real time, with RTP timestamps and sequence numbers that continue across
// loops as if it were one endless live camera.
type Demo struct {
	clip *demoClip
	opts Options
}

func newDemo(opts Options) (*Demo, error) {
	// Parsed and packetized once per source; Run only restamps headers.
	clip, err := parseDemoClip(demoClipMP4)
	if err != nil {
		return nil, err
	}
	return &Demo{clip: clip, opts: opts}, nil
}

// demoTrack is the per-Run RTP state of one media.
type demoTrack struct {
	ssrc   uint32
	seq    uint16
	tsBase uint32 // random start, as a real sender would pick
	loopTS uint32 // offset of the current loop
	clock  uint64
}

// Run plays until ctx is done; it fails only if the sink refuses the
// description.
func (d *Demo) Run(ctx context.Context, sink Sink) error {
	if err := sink.SetDescription(d.clip.description()); err != nil {
		return fmt.Errorf("demo source: sink refused description: %w", err)
	}
	tracks := [2]demoTrack{
		demoVideo: {ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), tsBase: rand.Uint32(), clock: demoH264ClockRate},
		demoAudio: {ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), tsBase: rand.Uint32(), clock: demoOpusClockRate},
	}
	d.opts.Logger.Info("demo source playing", "clip", d.clip.length, "frames", len(d.clip.frames))

	// One timer, reset per frame: the loop sleeps between frames.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var pkt rtp.Packet
	start := time.Now()
	for loop := uint64(0); ; loop++ {
		for i := range tracks {
			tracks[i].loopTS = d.clip.loopTicks(loop, tracks[i].clock)
		}
		loopStart := time.Duration(loop) * d.clip.length
		for i := range d.clip.frames {
			f := &d.clip.frames[i]
			pos := loopStart + f.at
			wait := time.Until(start.Add(time.Duration(float64(pos) / d.opts.Speed)))
			if wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			} else if ctx.Err() != nil {
				return nil
			} else if wait < -time.Second {
				// Far behind (a stalled sink, a suspended process): re-anchor
				// rather than burst the backlog at the readers.
				start = start.Add(-wait)
			}
			emitDemoFrame(sink, &pkt, f, &tracks[f.media], start.Add(pos))
		}
	}
}

// emitDemoFrame writes f's packets through one reused rtp.Packet: the Sink
// contract says the sink copies what it keeps.
func emitDemoFrame(sink Sink, pkt *rtp.Packet, f *demoFrame, t *demoTrack, ntp time.Time) {
	pt := uint8(demoOpusPayloadType)
	if f.media == demoVideo {
		pt = demoH264PayloadType
	}
	for _, p := range f.packets {
		// The whole header is rewritten so nothing a sink touched leaks on.
		pkt.Header = rtp.Header{
			Version:        2,
			Marker:         p.marker,
			PayloadType:    pt,
			SequenceNumber: t.seq,
			Timestamp:      t.tsBase + t.loopTS + f.ts,
			SSRC:           t.ssrc,
		}
		pkt.Payload = p.payload
		t.seq++
		sink.WritePacketRTP(f.media, pkt, ntp)
	}
}
