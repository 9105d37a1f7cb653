package source

import (
	"context"
	"net"
	"sync/atomic"
	"time"
)

// LatencyTolerant is what a Sink may implement to say that nobody waiting
// on it needs packets at once (the camera is only recorded, or not read at
// all). The RTSP source then lets the kernel gather the interleaved TCP
// stream into bigger reads (SO_RCVLOWAT): one wake-up and one read for
// ~200 ms of media instead of one per RTP packet. It is asked on every
// packet, so it must be cheap (an atomic load).
type LatencyTolerant interface {
	LatencyTolerant() bool
}

// LiveNotifier is what a LatencyTolerant sink may also implement: it calls
// f (from any goroutine) when it stops being tolerant (a viewer came), so
// that the upstream stops gathering at once rather than after the read it
// waits in (up to bulkDelay: the new viewer's first packets would wait).
// A later OnLive replaces f.
type LiveNotifier interface {
	OnLive(f func())
}

const (
	// bulkReadBuffer is the most one read takes from the socket. gortsplib
	// reads through a 4 KiB bufio.Reader; without this, a gathered burst
	// would still take one read per 4 KiB. The buffer is sized to the
	// burst (a quarter more than the low-water mark, at least
	// bulkMinBuffer), so a low-bitrate camera does not hold 64 KiB.
	bulkReadBuffer = 64 << 10
	bulkMinBuffer  = 16 << 10
	// bulkDelay is how much media a gathered read waits for, at the
	// stream's measured byte rate (never more than bulkReadBuffer, so that
	// a read always completes the wait). A slow camera gets a small
	// threshold: the wait stays ~200 ms, far inside any read timeout. At
	// 100 recorded cameras the upstream reads (each a read and, on
	// loopback, the ACK's processing) were ~15 % of camgate's CPU with
	// 50 ms: 200 ms takes a quarter of the reads; a recording's parts are
	// 1 s, so nothing waits on the delay.
	bulkDelay = 200 * time.Millisecond
)

// bulkConn is the upstream's TCP connection. Reads are buffered
// (bulkReadBuffer) and its receive low-water mark follows the sink's
// latency tolerance and the measured byte rate. Read is only called by
// gortsplib's reader goroutine; lowat is set from the packet callback, which
// runs on that same goroutine when the media is interleaved (play tunes only
// then: over UDP the callbacks run on the listeners' goroutines).
type bulkConn struct {
	net.Conn
	tcp *net.TCPConn

	buf        []byte
	start, end int

	received   atomic.Uint64 // bytes read from the socket
	lowat      int           // current SO_RCVLOWAT, 1 when off
	rateAt     time.Time
	rateBytes  uint64
	bytesPerS  float64
	lowatFails bool // the option is not supported: stop trying
	// woken: wakeLive set the low-water mark to 1 from another goroutine;
	// the reader's next tune takes that as its current value.
	woken atomic.Bool
}

// dialBulk dials with d and wraps TCP connections in a bulkConn;
// it reports the connection made through *out (and to observe, when set).
func dialBulk(d *net.Dialer, out **bulkConn, observe func(*bulkConn)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tcp, ok := c.(*net.TCPConn)
		if !ok {
			return c, nil
		}
		bc := &bulkConn{Conn: c, tcp: tcp, lowat: 1}
		*out = bc
		if observe != nil {
			observe(bc)
		}
		return bc, nil
	}
}

func (c *bulkConn) Read(p []byte) (int, error) {
	if c.start == c.end {
		if len(p) >= bulkReadBuffer {
			n, err := c.Conn.Read(p)
			c.received.Add(uint64(n))
			return n, err
		}
		if size := bufferFor(c.lowat); len(c.buf) != size {
			c.buf = make([]byte, size) // empty: nothing to keep
		}
		n, err := c.Conn.Read(c.buf)
		c.received.Add(uint64(n))
		c.start, c.end = 0, n
		if n == 0 {
			return 0, err
		}
	}
	n := copy(p, c.buf[c.start:c.end])
	c.start += n
	return n, nil
}

// tune sets the low-water mark for tolerant (gathered reads) or not (every
// byte at once). It measures the byte rate over about a second; a change of
// the option costs one setsockopt.
func (c *bulkConn) tune(tolerant bool, now time.Time) {
	if c.lowatFails {
		return
	}
	if c.rateAt.IsZero() {
		c.rateAt, c.rateBytes = now, c.received.Load()
	} else if d := now.Sub(c.rateAt); d >= time.Second {
		total := c.received.Load()
		c.bytesPerS = float64(total-c.rateBytes) / d.Seconds()
		c.rateAt, c.rateBytes = now, total
	}
	if c.woken.CompareAndSwap(true, false) {
		c.lowat = 1
	}
	want := 1
	if tolerant {
		want = min(int(c.bytesPerS*bulkDelay.Seconds()), bulkReadBuffer)
		want = max(want, 1)
	}
	// Hysteresis: a rate that wobbles a little costs no setsockopt.
	if want == c.lowat || (want > 1 && c.lowat > 1 && abs(want-c.lowat) < c.lowat/4) {
		return
	}
	if err := setRcvLowat(c.tcp, want); err != nil {
		c.lowatFails = true
		return
	}
	c.lowat = want
}

// wakeLive ends gathered reads now (any goroutine): the kernel then reports
// the socket readable with what it holds, so the read waiting for a
// gathered burst returns at once. A tune running at the same moment with
// the old tolerance may set the mark again: then the viewer's first
// packets wait for one gathered read, as without this.
func (c *bulkConn) wakeLive() {
	if err := setRcvLowat(c.tcp, 1); err == nil {
		c.woken.Store(true)
	}
}

// bufferFor is the read buffer for a low-water mark: the burst and a
// quarter, in 4 KiB steps, between bulkMinBuffer and bulkReadBuffer.
func bufferFor(lowat int) int {
	n := (lowat + lowat/4 + 4095) &^ 4095
	return min(max(n, bulkMinBuffer), bulkReadBuffer)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
