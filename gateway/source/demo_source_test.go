package source

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

func TestDemoClipMatchesItsRecipe(t *testing.T) {
	if n := len(demoClipMP4); n >= 1<<20 {
		t.Fatalf("embedded clip is %d bytes, want under 1 MB", n)
	}
	clip, err := parseDemoClip(demoClipMP4)
	if err != nil {
		t.Fatal(err)
	}
	var sps h264.SPS
	if err := sps.Unmarshal(clip.sps); err != nil {
		t.Fatal(err)
	}
	if sps.Width() != 640 || sps.Height() != 360 {
		t.Errorf("video is %dx%d, want 640x360", sps.Width(), sps.Height())
	}
	if sps.ProfileIdc != 66 {
		t.Errorf("H264 profile_idc %d, want 66 (baseline)", sps.ProfileIdc)
	}
	if clip.channels != 2 {
		t.Errorf("Opus has %d channels, want 2", clip.channels)
	}
	if clip.length < 9*time.Second || clip.length > 11*time.Second {
		t.Errorf("clip lasts %v, want about 10s", clip.length)
	}
}

// runDemo plays d into a recording sink until cond holds, then stops it and
// checks that Run returns nil on cancel. It returns the packets and how long
// playing them took.
func runDemo(t *testing.T, d *Demo, within time.Duration, what string, cond func([]*description.Session, []recordedPacket) bool) ([]recordedPacket, time.Duration) {
	t.Helper()
	sink := newRecordingSink()
	start := time.Now()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	sink.waitFor(t, within, what, cond)
	elapsed := time.Since(start)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	_, pkts := sink.snapshot()
	return pkts, elapsed
}

// clipTime is how far into the stream the last video packet is, in seconds.
func clipTime(pkts []recordedPacket) float64 {
	var first, last uint32
	seen := false
	for _, p := range pkts {
		if p.media != demoVideo {
			continue
		}
		if !seen {
			first, seen = p.pkt.Timestamp, true
		}
		last = p.pkt.Timestamp
	}
	return float64(last-first) / demoH264ClockRate
}

func TestDemoPlaysH264AndOpusWithKeyframesEverySecond(t *testing.T) {
	src, err := New(DemoURL, Options{Speed: 10})
	if err != nil {
		t.Fatal(err)
	}
	d := src.(*Demo)
	pkts, elapsed := runDemo(t, d, 10*time.Second, "2.5 s of clip", func(_ []*description.Session, p []recordedPacket) bool {
		return clipTime(p) >= 2.5
	})

	// Paced, not dumped: 2.5 s of clip at 10x takes at least 0.25 s.
	if elapsed < 240*time.Millisecond {
		t.Errorf("2.5 s of clip at speed 10 played in %v, want about 250ms", elapsed)
	}

	n := countMedia(pkts)
	if n[demoVideo] == 0 || n[demoAudio] == 0 {
		t.Fatalf("packets per media = %v, want both H264 (0) and Opus (1)", n)
	}
	// 2.5 s of 20 ms Opus frames is about 125 packets.
	if n[demoAudio] < 100 {
		t.Errorf("%d Opus packets for 2.5 s, want about 125", n[demoAudio])
	}

	aus := decodeH264(t, d.clip.h264Format(), pkts, demoVideo)
	var idrTS []uint32
	for _, au := range aus {
		if !au.idr {
			continue
		}
		idrTS = append(idrTS, au.ts)
		if len(au.au) < 3 ||
			h264.NALUType(au.au[0][0]&0x1f) != h264.NALUTypeSPS ||
			h264.NALUType(au.au[1][0]&0x1f) != h264.NALUTypePPS {
			t.Errorf("keyframe at ts %d does not start with SPS, PPS", au.ts)
		}
	}
	if len(idrTS) < 3 {
		t.Fatalf("%d keyframes in 2.5 s, want 3 (at 0, 1, 2 s)", len(idrTS))
	}
	for i := 1; i < len(idrTS); i++ {
		gap := float64(idrTS[i]-idrTS[i-1]) / demoH264ClockRate
		if gap < 0.95 || gap > 1.05 {
			t.Errorf("keyframe gap %.3f s, want 1 s", gap)
		}
	}
}

// truncatedDemo returns a Demo whose clip is cut after the first `frames`
// video frames, so that tests cross many loop boundaries quickly.
func truncatedDemo(t *testing.T, frames int, speed float64) *Demo {
	t.Helper()
	clip, err := parseDemoClip(demoClipMP4)
	if err != nil {
		t.Fatal(err)
	}
	var cut time.Duration
	seen := 0
	for _, f := range clip.frames {
		if f.media == demoVideo {
			if seen == frames {
				cut = f.at
				break
			}
			seen++
		}
	}
	if cut == 0 {
		t.Fatalf("clip has fewer than %d video frames", frames+1)
	}
	short := *clip
	short.lenNum, short.lenDen, short.length = uint64(cut), uint64(time.Second), cut
	short.frames = nil
	for _, f := range clip.frames {
		if f.at < cut {
			short.frames = append(short.frames, f)
		}
	}
	opts := Options{Speed: speed}
	if err := opts.setDefaults(); err != nil {
		t.Fatal(err)
	}
	return &Demo{clip: &short, opts: opts}
}

func TestDemoTimestampsContinueAcrossLoops(t *testing.T) {
	const frames = 10 // 0.4 s loop
	d := truncatedDemo(t, frames, 10)
	loopLen := d.clip.length.Seconds()
	pkts, _ := runDemo(t, d, 10*time.Second, "3 loops", func(_ []*description.Session, p []recordedPacket) bool {
		return clipTime(p) >= 3*loopLen
	})

	tests := []struct {
		media    int
		clock    float64
		frameDur float64 // seconds
	}{
		{demoVideo, demoH264ClockRate, 0.040},
		{demoAudio, demoOpusClockRate, 0.020},
	}
	for _, tt := range tests {
		var prev *rtp.Packet
		for i := range pkts {
			p := &pkts[i].pkt
			if pkts[i].media != tt.media {
				continue
			}
			if prev != nil {
				if p.SequenceNumber != prev.SequenceNumber+1 {
					t.Fatalf("media %d: seq %d after %d, want +1", tt.media, p.SequenceNumber, prev.SequenceNumber)
				}
				step := float64(int32(p.Timestamp-prev.Timestamp)) / tt.clock
				// Packets of one access unit share a timestamp; between
				// frames, including across a loop, the step is one frame
				// or less (the audio track ends a little before the video).
				if step < 0 || step > tt.frameDur*1.25 {
					t.Fatalf("media %d: timestamp step %.4f s at seq %d, want 0..%.3f s",
						tt.media, step, p.SequenceNumber, tt.frameDur)
				}
			}
			prev = p
		}
	}

	// Every loop restarts on a keyframe, so every loop has one.
	aus := decodeH264(t, d.clip.h264Format(), pkts, demoVideo)
	idr := 0
	for _, au := range aus {
		if au.idr {
			idr++
		}
	}
	if idr < 3 {
		t.Errorf("%d keyframes over 3 loops, want at least 3", idr)
	}
}

type refusingSink struct{ recordingSink }

var errRefused = errors.New("no thanks")

func (*refusingSink) SetDescription(*description.Session) error { return errRefused }

func TestDemoRunFailsWhenSinkRefusesDescription(t *testing.T) {
	src, err := New(DemoURL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(t.Context(), &refusingSink{})
	if !errors.Is(err, errRefused) {
		t.Fatalf("Run = %v, want the sink's error", err)
	}
}

func TestDemoDescriptionIsH264AndOpus(t *testing.T) {
	src, err := New(DemoURL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	desc := src.(*Demo).clip.description()
	forms := mediaFormats(desc)
	if len(forms) != 2 {
		t.Fatalf("%d medias, want 2", len(forms))
	}
	if f, ok := forms[0].(*format.H264); !ok || len(f.SPS) == 0 || len(f.PPS) == 0 {
		t.Errorf("media 0 is %#v, want H264 with SPS and PPS", forms[0])
	}
	if f, ok := forms[1].(*format.Opus); !ok || f.ChannelCount != 2 {
		t.Errorf("media 1 is %#v, want stereo Opus", forms[1])
	}
}

type discardSink struct{ n int }

func (*discardSink) SetDescription(*description.Session) error    { return nil }
func (s *discardSink) WritePacketRTP(int, *rtp.Packet, time.Time) { s.n++ }

// BenchmarkDemoFrame is what playing one frame costs at run time: restamp the
// pre-packetized RTP packets and hand them to the sink.
func BenchmarkDemoFrame(b *testing.B) {
	clip, err := parseDemoClip(demoClipMP4)
	if err != nil {
		b.Fatal(err)
	}
	tracks := [2]demoTrack{{clock: demoH264ClockRate}, {clock: demoOpusClockRate}}
	var pkt rtp.Packet
	sink := &discardSink{}
	ntp := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := &clip.frames[i%len(clip.frames)]
		emitDemoFrame(sink, &pkt, f, &tracks[f.media], ntp)
		i++
	}
	b.ReportMetric(float64(sink.n)/float64(i), "pkts/frame")
}

// BenchmarkDemoPacketizeAU is the cost the demo avoids at run time by
// packetizing once: the gortsplib H264 encoder on one access unit.
func BenchmarkDemoPacketizeAU(b *testing.B) {
	clip, err := parseDemoClip(demoClipMP4)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := clip.h264Format().CreateEncoder()
	if err != nil {
		b.Fatal(err)
	}
	var aus [][][]byte
	for _, s := range mustVideoSamples(b, clip) {
		aus = append(aus, s)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := enc.Encode(aus[i%len(aus)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// mustVideoSamples reassembles the clip's access units from its packets.
func mustVideoSamples(b *testing.B, clip *demoClip) [][][]byte {
	dec, err := clip.h264Format().CreateDecoder()
	if err != nil {
		b.Fatal(err)
	}
	var out [][][]byte
	for _, f := range clip.frames {
		if f.media != demoVideo {
			continue
		}
		for _, p := range f.packets {
			au, err := dec.Decode(&rtp.Packet{Header: rtp.Header{Marker: p.marker}, Payload: p.payload})
			if err == nil {
				out = append(out, au)
			}
		}
	}
	return out
}

func BenchmarkParseDemoClip(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseDemoClip(demoClipMP4); err != nil {
			b.Fatal(err)
		}
	}
}

// stallingSink blocks on its first packet, like a hub stuck for a while.
type stallingSink struct {
	*recordingSink
	stall    time.Duration
	once     sync.Once
	released chan time.Time
}

func (s *stallingSink) WritePacketRTP(media int, pkt *rtp.Packet, ntp time.Time) {
	s.once.Do(func() {
		<-time.After(s.stall)
		s.released <- time.Now()
	})
	s.recordingSink.WritePacketRTP(media, pkt, ntp)
}

func TestDemoDoesNotBurstAfterAStall(t *testing.T) {
	src, err := New(DemoURL, Options{Speed: 100})
	if err != nil {
		t.Fatal(err)
	}
	d := src.(*Demo)
	sink := &stallingSink{recordingSink: newRecordingSink(), stall: 1200 * time.Millisecond, released: make(chan time.Time, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	defer func() { cancel(); <-done }()

	<-sink.released
	<-time.After(100 * time.Millisecond)
	_, pkts := sink.snapshot()
	// The stall was 120 s of clip time at this speed. Catching up would
	// dump all of it at once; re-anchoring plays ~10 s in 100 ms.
	if got := clipTime(pkts); got > 40 {
		t.Errorf("%.0f s of clip sent within 100ms of a stall, want about 10 s (no burst)", got)
	}
}
