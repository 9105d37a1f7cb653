package stream

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

func testDesc() *description.Session {
	return &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{&format.Opus{PayloadTyp: 111, ChannelCount: 2}}},
	}}
}

// idr, pframe and audio are RTP payloads of the kinds a camera sends.
var (
	idr    = []byte{0x65, 0x88, 0x84}
	sps    = []byte{0x67, 0x42, 0xc0, 0x1e}
	pframe = []byte{0x41, 0x9a, 0x00}
	audio  = []byte{0xfc, 0xff, 0xfe}
)

func write(s *Stream, media int, payload []byte, ts uint32) {
	s.WritePacketRTP(media, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Timestamp: ts}, Payload: payload}, time.Now())
}

// collect runs r until n packets arrived and returns copies of them.
// got is a copy of a received packet.
type got struct {
	Media int
	Buf   []byte
	Key   bool
}

func (g got) ts() uint32 { return (&Packet{Buf: g.Buf}).Timestamp() }

func collect(t *testing.T, r *Reader, n int) []got {
	t.Helper()
	var out []got
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errStop := context.Canceled
	err := r.Run(ctx, func(batch []*Packet) error {
		for _, p := range batch {
			out = append(out, got{Media: p.Media, Buf: append([]byte(nil), p.Buf...), Key: p.Key})
		}
		if len(out) >= n {
			return errStop
		}
		return nil
	})
	if err != errStop {
		t.Fatalf("reader stopped after %d of %d packets: %v", len(out), n, err)
	}
	return out
}

func TestVariantsSplitAudio(t *testing.T) {
	s := New("cam1")
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Video.Desc.Medias); n != 1 {
		t.Fatalf("video variant has %d medias, want 1", n)
	}
	full, video := NewReader(0), NewReader(0)
	if err := s.Full.AddReader(full); err != nil {
		t.Fatal(err)
	}
	if err := s.Video.AddReader(video); err != nil {
		t.Fatal(err)
	}
	write(s, 0, idr, 1000)
	write(s, 1, audio, 500)
	write(s, 0, pframe, 4600)

	f := collect(t, full, 3)
	if f[0].Media != 0 || !f[0].Key || f[1].Media != 1 || f[2].Media != 0 || f[2].Key {
		t.Fatalf("full variant got %+v", f)
	}
	v := collect(t, video, 2)
	if v[0].Media != 0 || v[1].Media != 0 || !v[0].Key {
		t.Fatalf("video variant got %+v", v)
	}
	// The video variant numbers its own packets: no gap where audio was removed.
	if seq0, seq1 := uint16(v[0].Buf[2])<<8|uint16(v[0].Buf[3]), uint16(v[1].Buf[2])<<8|uint16(v[1].Buf[3]); seq1 != seq0+1 {
		t.Fatalf("video sequence numbers %d then %d", seq0, seq1)
	}
}

// TestVideoVariantMatchesFullVideo: whether the video media comes first
// (its packets are shared with the full variant) or after the audio (the
// video variant renumbers them), a video-variant reader gets the video
// packets with the video variant's media index, consecutive sequence
// numbers and the full variant's payloads and timestamps, also after a GOP
// replay.
func TestVideoVariantMatchesFullVideo(t *testing.T) {
	for _, audioFirst := range []bool{false, true} {
		desc := testDesc()
		vm := 0
		if audioFirst {
			desc.Medias[0], desc.Medias[1] = desc.Medias[1], desc.Medias[0]
			vm = 1
		}
		s := New("cam1")
		if err := s.SetDescription(desc); err != nil {
			t.Fatal(err)
		}
		full, video := NewReader(0), NewReader(0)
		if err := s.Full.AddReader(full); err != nil {
			t.Fatal(err)
		}
		if err := s.Video.AddReader(video); err != nil {
			t.Fatal(err)
		}
		write(s, vm, idr, 1000)
		write(s, 1-vm, audio, 500)
		write(s, vm, pframe, 4600)
		late := NewReader(0) // joins on the cached GOP
		if err := s.Video.AddReader(late); err != nil {
			t.Fatal(err)
		}
		write(s, vm, pframe, 8200)
		var fullVideo []got
		for _, g := range collect(t, full, 4) {
			if g.Media == vm {
				fullVideo = append(fullVideo, g)
			}
		}
		for name, r := range map[string]*Reader{"video": video, "late": late} {
			v := collect(t, r, 3)
			for i, g := range v {
				seq := uint16(g.Buf[2])<<8 | uint16(g.Buf[3])
				first := uint16(v[0].Buf[2])<<8 | uint16(v[0].Buf[3])
				if g.Media != 0 || seq != first+uint16(i) || g.ts() != fullVideo[i].ts() ||
					string(g.Buf[rtpHeaderSize:]) != string(fullVideo[i].Buf[rtpHeaderSize:]) || g.Key != fullVideo[i].Key {
					t.Fatalf("audio first %v, %s reader: packet %d is %+v, full variant's video %+v", audioFirst, name, i, g, fullVideo[i])
				}
			}
		}
		s.Close()
	}
}

func TestNewReaderStartsOnCachedGOP(t *testing.T) {
	s := New("cam1")
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	write(s, 0, pframe, 100) // before any keyframe: not cached
	write(s, 0, sps, 1000)
	write(s, 0, idr, 1000) // same access unit as the SPS: not a second GOP start
	write(s, 1, audio, 500)
	write(s, 0, pframe, 4600)

	r := NewReader(0)
	if err := s.Full.AddReader(r); err != nil {
		t.Fatal(err)
	}
	got := collect(t, r, 4)
	if !got[0].Key || got[0].Buf[12] != sps[0] {
		t.Fatalf("first packet %x key=%v, want the SPS starting the GOP", got[0].Buf, got[0].Key)
	}
	for _, p := range got[1:] {
		if p.Key {
			t.Fatalf("only the first packet of the access unit starts the GOP: %+v", got)
		}
	}
}

func TestReaderWithoutGOPWaitsForKeyframe(t *testing.T) {
	s := New("cam1")
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	r := NewReader(0)
	if err := s.Full.AddReader(r); err != nil {
		t.Fatal(err)
	}
	write(s, 0, pframe, 100)
	write(s, 1, audio, 100)
	write(s, 0, idr, 3700)
	got := collect(t, r, 1)
	if !got[0].Key {
		t.Fatalf("reader got a non-key packet first: %x", got[0].Buf)
	}
}

// TestLiveOnlyReaderStartsAtLiveEdge: a live-only reader (the RTSP UDP
// pump) gets neither the cached GOP nor a wait for the next keyframe: the
// next packet published, whatever it is.
func TestLiveOnlyReaderStartsAtLiveEdge(t *testing.T) {
	s := New("cam1")
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	write(s, 0, idr, 1000)
	write(s, 0, pframe, 4600) // cached GOP: idr, pframe
	r := NewReader(0)
	r.SetLiveOnly()
	if err := s.Full.AddReader(r); err != nil {
		t.Fatal(err)
	}
	write(s, 1, audio, 500)
	write(s, 0, pframe, 8200)
	got := collect(t, r, 2)
	if got[0].Media != 1 || got[1].ts() != 8200 {
		t.Fatalf("got %+v, want the audio packet and the P-frame published after joining", got)
	}
}

func TestSlowReaderDropsWithoutStallingOthers(t *testing.T) {
	s := New("cam1")
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	slow, fast := NewReader(4), NewReader(256)
	for _, r := range []*Reader{slow, fast} {
		if err := s.Full.AddReader(r); err != nil {
			t.Fatal(err)
		}
	}
	write(s, 0, idr, 0)
	for i := 1; i < 100; i++ {
		write(s, 0, pframe, uint32(i*3600)) // slow never reads: the publisher must not block
	}
	if got := len(collect(t, fast, 100)); got != 100 {
		t.Fatalf("fast reader got %d packets", got)
	}
	if slow.Dropped() != 96 {
		t.Fatalf("slow reader dropped %d, want 96", slow.Dropped())
	}
	// After an overflow the slow reader resumes at the next keyframe.
	if got := collect(t, slow, 4); !got[0].Key {
		t.Fatalf("slow reader's queue should hold the first packets: %+v", got)
	}
	write(s, 0, pframe, 396400) // still skipped: not a keyframe
	write(s, 0, idr, 400000)
	got := collect(t, slow, 1)
	if !got[0].Key || slow.Dropped() != 97 {
		t.Fatalf("slow reader did not resume on the keyframe: %+v", got)
	}
}

func TestTimestampsContinueAcrossReconnect(t *testing.T) {
	s := New("cam1")
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	r := NewReader(0)
	if err := s.Full.AddReader(r); err != nil {
		t.Fatal(err)
	}
	write(s, 0, idr, 90000)
	// The upstream restarts with a new random timestamp base.
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	write(s, 0, idr, 5)
	got := collect(t, r, 2)
	if d := got[1].ts() - got[0].ts(); d > 90000 {
		t.Fatalf("timestamp jumped by %d across the reconnect", d)
	}
}

func TestCloseEndsReaders(t *testing.T) {
	s := New("cam1")
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	r := NewReader(0)
	if err := s.Video.AddReader(r); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() {
		defer wg.Done()
		err = r.Run(context.Background(), func([]*Packet) error { return nil })
	}()
	s.Close()
	wg.Wait()
	if err != ErrClosed {
		t.Fatalf("Run returned %v, want ErrClosed", err)
	}
	if err := s.Video.AddReader(NewReader(0)); err != ErrClosed {
		t.Fatalf("AddReader after close: %v", err)
	}
}

// BenchmarkFanout100 publishes one packet to 100 readers of a variant; the
// readers drain concurrently. allocs/op is per packet for all 100 readers.
func BenchmarkFanout100(b *testing.B) {
	s := New("cam1")
	if err := s.SetDescription(testDesc()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 100 {
		r := NewReader(4096)
		if err := s.Video.AddReader(r); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(ctx, func([]*Packet) error { return nil }) }()
	}
	payload := make([]byte, 1200)
	payload[0] = 0x41
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: payload}
	now := time.Now()
	s.WritePacketRTP(0, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: idr}, now)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pkt.Timestamp = uint32(i)
		s.WritePacketRTP(0, pkt, now)
	}
	b.StopTimer()
	cancel()
	wg.Wait()
}

// TestLatencyTolerantWhileOnlyTolerantReaders: a stream read only by
// tolerant readers (the recorder) lets its upstream gather reads; a viewer
// on either variant ends that until it leaves, and its arrival is told
// (OnLive) once, when the stream stops being tolerant.
func TestLatencyTolerantWhileOnlyTolerantReaders(t *testing.T) {
	s := New("cam1")
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	var woken atomic.Int32
	s.OnLive(func() { woken.Add(1) })
	rec := NewReader(0)
	rec.SetLatencyTolerant()
	if err := s.Full.AddReader(rec); err != nil {
		t.Fatal(err)
	}
	if !s.LatencyTolerant() {
		t.Fatal("recorder only: not tolerant")
	}
	viewer := NewReader(0)
	if err := s.Video.AddReader(viewer); err != nil {
		t.Fatal(err)
	}
	if s.LatencyTolerant() {
		t.Fatal("with a viewer: tolerant")
	}
	second := NewReader(0)
	if err := s.Full.AddReader(second); err != nil {
		t.Fatal(err)
	}
	second.Close()
	if n := woken.Load(); n != 1 {
		t.Errorf("OnLive called %d times for two viewers after the recorder, want 1", n)
	}
	viewer.Close()
	if !s.LatencyTolerant() {
		t.Fatal("viewer gone: not tolerant")
	}
	rec.Close()
	s.Close()
}

// recordedOnly is cam1 read only by a latency-tolerant reader (the
// recorder), with the GOP cached for viewers only when viewersOnly, after
// one GOP (a keyframe at 1000, a P-frame at 4600), and a first viewer
// attached after it.
func recordedOnly(t *testing.T, viewersOnly bool) (s *Stream, rec, first *Reader) {
	t.Helper()
	s = New("cam1")
	s.users.viewersOnly = viewersOnly
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	rec = NewReader(0)
	rec.SetLatencyTolerant()
	if err := s.Full.AddReader(rec); err != nil {
		t.Fatal(err)
	}
	write(s, 0, idr, 1000)
	write(s, 0, pframe, 4600)
	first = NewReader(0)
	if err := s.Full.AddReader(first); err != nil {
		t.Fatal(err)
	}
	return s, rec, first
}

// By default (sessions.gop_cache: always) a stream read only by the
// recorder keeps its GOP: the first viewer starts on it at once.
func TestRecordedOnlyStreamKeepsGOPByDefault(t *testing.T) {
	s, _, first := recordedOnly(t, false)
	if g := collect(t, first, 2); !g[0].Key || g[0].ts() != 1000 {
		t.Fatalf("first viewer started on %+v, want the cached keyframe at 1000", g[0])
	}
	s.Close()
}

// TestRecordedOnlyStreamCachesNoGOP: with the GOP cached for viewers only
// (sessions.gop_cache: viewers), while only a tolerant reader (the
// recorder) reads a stream, no GOP is kept, so a first viewer starts at the
// next keyframe; once a viewer is attached the GOP is cached again and the
// next viewer starts on it at once.
func TestRecordedOnlyStreamCachesNoGOP(t *testing.T) {
	s, rec, first := recordedOnly(t, true)
	if n := first.Queued(); n != 0 {
		t.Fatalf("first viewer of a recorded-only stream got %d cached packets, want none (no GOP kept)", n)
	}
	write(s, 0, pframe, 8200) // skipped: the viewer waits for a keyframe
	write(s, 0, idr, 11800)
	write(s, 0, pframe, 15400)
	if g := collect(t, first, 2); !g[0].Key || g[0].ts() != 11800 {
		t.Fatalf("first viewer started on %+v, want the keyframe at 11800", g[0])
	}
	second := NewReader(0)
	if err := s.Full.AddReader(second); err != nil {
		t.Fatal(err)
	}
	if g := collect(t, second, 2); !g[0].Key || g[0].ts() != 11800 || g[1].ts() != 15400 {
		t.Fatalf("second viewer got %+v, want the cached GOP from 11800", g)
	}
	if got := collect(t, rec, 5); len(got) != 5 {
		t.Fatalf("recorder got %d packets, want all 5", len(got))
	}
	first.Close()
	second.Close()
	rec.Close()
	s.Close()
}

// Keyframe returns the cached GOP's keyframe access unit (its packets on
// the key's media with the key's timestamp), and nothing before a keyframe.
func TestVariantKeyframe(t *testing.T) {
	s := New("cam1")
	if err := s.SetDescription(testDesc()); err != nil {
		t.Fatal(err)
	}
	if got := s.Video.Keyframe(nil); len(got) != 0 {
		t.Fatalf("before any keyframe: %d packets", len(got))
	}
	write(s, 0, pframe, 100)
	write(s, 0, sps, 900)
	write(s, 1, audio, 900)
	write(s, 0, idr, 900)
	write(s, 0, pframe, 1800)
	for _, v := range []*Variant{s.Full, s.Video} {
		kf := v.Keyframe(nil)
		if len(kf) != 2 || kf[0].Payload()[0] != sps[0] || kf[1].Payload()[0] != idr[0] {
			t.Fatalf("%s: %d packets", v.Name, len(kf))
		}
		for _, p := range kf {
			if p.Timestamp() != 900 || p.Media != 0 {
				t.Fatalf("%s: packet ts %d media %d", v.Name, p.Timestamp(), p.Media)
			}
			p.Release()
		}
	}
	s.Close()
}
