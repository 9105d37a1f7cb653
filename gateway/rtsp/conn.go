package rtsp

import (
	"net"
	"sync"
	"time"
)

// mediaConn wraps each accepted RTSP connection so that media can be written
// to it with one vectored write per batch, beside gortsplib's own writes
// (responses). A mutex keeps every write whole; the PLAY response is known
// to be on the wire before the first media byte because the media writer is
// only started by the write that sends it.
type mediaConn struct {
	net.Conn
	tcp *net.TCPConn // nil when the conn is not plain TCP (e.g. TLS): batches are coalesced

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

// mediaListener wraps accepted connections in mediaConn.
type mediaListener struct{ net.Listener }

func (l mediaListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tcp, _ := c.(*net.TCPConn)
	return &mediaConn{Conn: c, tcp: tcp}, nil
}
