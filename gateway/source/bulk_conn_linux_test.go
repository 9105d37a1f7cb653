//go:build linux

package source

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/pion/rtp"
)

// tolerantSink counts the bursts packets arrive in (a packet more than
// 2 ms after the previous one starts a burst) and every video sequence gap.
type tolerantSink struct {
	tolerant atomic.Bool
	wake     atomic.Pointer[func()]

	mu      sync.Mutex
	last    time.Time
	bursts  int
	packets int
	gaps    int
	seq     map[int]uint16
}

func (s *tolerantSink) LatencyTolerant() bool { return s.tolerant.Load() }

// OnLive keeps the connection's wake (source.LiveNotifier).
func (s *tolerantSink) OnLive(f func()) { s.wake.Store(&f) }

func (s *tolerantSink) SetDescription(*description.Session) error { return nil }

func (s *tolerantSink) WritePacketRTP(media int, pkt *rtp.Packet, _ time.Time) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.last) > 2*time.Millisecond {
		s.bursts++
	}
	s.last = now
	s.packets++
	if prev, ok := s.seq[media]; ok && pkt.SequenceNumber != prev+1 {
		s.gaps++
	}
	s.seq[media] = pkt.SequenceNumber
}

func (s *tolerantSink) take() (bursts, packets, gaps int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, p, g := s.bursts, s.packets, s.gaps
	s.bursts, s.packets, s.gaps = 0, 0, 0
	return b, p, g
}

// TestTolerantSinkGetsGatheredReads: while the sink says it is latency
// tolerant (a recording only), the TCP upstream's packets arrive in a few
// bursts per second (~200 ms of media each) instead of frame by frame;
// when it stops being tolerant (a viewer came), they come frame by frame
// again, the gathering ended at once by the sink's wake (OnLive). Nothing
// is lost either way.
func TestTolerantSinkGetsGatheredReads(t *testing.T) {
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, h264Opus)
	src, err := New(up.URL(), Options{Transport: "tcp", ReadTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *bulkConn, 4)
	src.(*RTSP).onConn = func(c *bulkConn) { conns <- c }
	sink := &tolerantSink{seq: map[int]uint16{}}
	sink.tolerant.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var conn *bulkConn
	select {
	case conn = <-conns:
	case <-time.After(10 * time.Second):
		t.Fatal("no upstream connection")
	}
	phase := func(tolerant bool) (lowat int, burstsPerS, packetsPerS float64) {
		sink.tolerant.Store(tolerant)
		time.Sleep(1500 * time.Millisecond) //nolint:forbidigo // settling: the byte rate is measured over a second
		sink.take()
		const window = 2 * time.Second
		time.Sleep(window) //nolint:forbidigo // measuring arrival rates over a fixed window
		b, p, g := sink.take()
		if g > 0 {
			t.Errorf("tolerant=%v: %d sequence gaps", tolerant, g)
		}
		lowat, err := rcvLowat(conn.tcp)
		if err != nil {
			t.Fatal(err)
		}
		return lowat, float64(b) / window.Seconds(), float64(p) / window.Seconds()
	}
	tl, tb, tp := phase(true)
	// A viewer comes: the sink's OnLive wake ends the gathered read at
	// once, not at the next packet (up to bulkDelay later).
	wake := sink.wake.Load()
	if wake == nil {
		t.Fatal("the source registered no OnLive wake")
	}
	(*wake)()
	if v, err := rcvLowat(conn.tcp); err != nil || v != 1 {
		t.Errorf("SO_RCVLOWAT %d (%v) right after the wake, want 1", v, err)
	}
	ll, lb, lp := phase(false)
	t.Logf("tolerant: SO_RCVLOWAT %d, %.0f bursts/s, %.0f packets/s; live: %d, %.0f bursts/s, %.0f packets/s", tl, tb, tp, ll, lb, lp)
	if tp < 50 || lp < 50 {
		t.Fatalf("packets stopped flowing: %.0f and %.0f per second", tp, lp)
	}
	if tl <= 1 || tl > bulkReadBuffer || ll != 1 {
		t.Errorf("SO_RCVLOWAT %d while tolerant, %d while live: want 2..%d, then 1", tl, ll, bulkReadBuffer)
	}
	if tb > lb {
		t.Errorf("tolerant sink got more bursts (%.0f/s) than a live one (%.0f/s)", tb, lb)
	}
}

func rcvLowat(c *net.TCPConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT)
	}); err != nil {
		return 0, err
	}
	return v, serr
}

// TestBulkBufferFollowsTheBurst: the read buffer is the gathered burst
// and a quarter (4 KiB steps), never under 16 KiB nor over 64 KiB.
func TestBulkBufferFollowsTheBurst(t *testing.T) {
	for _, tc := range []struct{ lowat, want int }{
		{1, 16 << 10}, {12500, 16 << 10}, {20000, 28 << 10}, {50000, 64 << 10}, {bulkReadBuffer, 64 << 10},
	} {
		if got := bufferFor(tc.lowat); got != tc.want {
			t.Errorf("bufferFor(%d) = %d, want %d", tc.lowat, got, tc.want)
		}
	}
}
