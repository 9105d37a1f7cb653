package rtsp

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
)

// mediaConn wraps each accepted RTSP connection so that media can be written
// to it with one vectored write per batch, beside gortsplib's own writes
// (responses). A mutex keeps every write whole; the PLAY response is known
// to be on the wire before the first media byte because the media writer is
// only started by the write that sends it.
//
// It also bounds how long the connection may stay silent while no session
// plays on it (see Server.IdleTimeout): gortsplib reads the first bytes of a
// connection (its tunnel sniffing) with no deadline at all, and between
// requests with its 60 s keepalive timeout, which is meant for playing
// sessions.
type mediaConn struct {
	net.Conn
	tcp *net.TCPConn // nil when the conn is not plain TCP (e.g. TLS): batches are coalesced

	nonce   string        // the Digest nonce this connection is challenged with (set at accept)
	idle    time.Duration // read deadline cap while not playing; 0 = gortsplib's own
	playing atomic.Bool   // a session plays on this conn: gortsplib's deadlines apply
	release func()        // gives back the per-address slot (nil: no cap)
	closed  sync.Once

	mu         sync.Mutex // serializes writes
	afterWrite func()     // run once, after the next write (the PLAY response)
	scratch    []byte     // coalescing buffer for non-TCP conns (mu held)
}

func (c *mediaConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	n, err := c.Conn.Write(b)
	f := c.afterWrite
	c.afterWrite = nil
	c.mu.Unlock()
	if f != nil && err == nil {
		f()
	}
	return n, err
}

// SetReadDeadline is gortsplib's, shortened to the idle timeout while no
// session plays on the connection.
func (c *mediaConn) SetReadDeadline(t time.Time) error {
	if c.idle > 0 && !c.playing.Load() {
		if limit := time.Now().Add(c.idle); t.IsZero() || t.After(limit) {
			t = limit
		}
	}
	return c.Conn.SetReadDeadline(t)
}

// setPlaying switches between the idle timeout and gortsplib's deadlines. A
// playing session's connection carries RTCP or keepalives that gortsplib
// times out by itself (IdleTimeout, 60 s).
func (c *mediaConn) setPlaying(on bool) {
	c.playing.Store(on)
	if !on && c.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
}

// Close closes the connection and gives back its per-address slot once.
func (c *mediaConn) Close() error {
	err := c.Conn.Close()
	if c.release != nil {
		c.closed.Do(c.release)
	}
	return err
}

// setAfterWrite arranges f to run after the next write completes.
func (c *mediaConn) setAfterWrite(f func()) {
	c.mu.Lock()
	c.afterWrite = f
	c.mu.Unlock()
}

// writeBuffers writes bufs with one writev (on TCP), whole, with a deadline.
func (c *mediaConn) writeBuffers(bufs *net.Buffers, timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.Conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if c.tcp != nil {
		_, err := bufs.WriteTo(c.tcp)
		return err
	}
	// No writev through TLS: one contiguous write makes one record.
	c.scratch = c.scratch[:0]
	for _, b := range *bufs {
		c.scratch = append(c.scratch, b...)
	}
	_, err := c.Conn.Write(c.scratch)
	return err
}

// mediaListener wraps accepted connections in mediaConn, closes at once
// those beyond the per-address cap, and gives the others the idle timeout
// before their first request.
type mediaListener struct {
	net.Listener
	idle  time.Duration
	limit *connLimiter // nil: no cap
}

func (l mediaListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var release func()
		if l.limit != nil {
			var ok bool
			if release, ok = l.limit.acquire(c.RemoteAddr()); !ok {
				_ = c.Close()
				continue // gortsplib's accept loop ends on an error: refuse here
			}
		}
		if l.idle > 0 {
			_ = c.SetReadDeadline(time.Now().Add(l.idle))
		}
		tcp, _ := c.(*net.TCPConn)
		nonce, err := auth.GenerateNonce()
		if err != nil {
			_ = c.Close()
			if release != nil {
				release()
			}
			continue
		}
		return &mediaConn{Conn: c, tcp: tcp, nonce: nonce, idle: l.idle, release: release}, nil
	}
}
