package webrtc

import (
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// batchSize is how many datagrams one sendmmsg sends at most.
const batchSize = 64

// batchConn is the ICE mux's UDP socket. Outside a batch window it sends
// each datagram at once, as *net.UDPConn does. Inside one — a pump fanning
// a batch of packets out to every peer — datagrams are queued and sent with
// one sendmmsg per batchSize when the window ends: a syscall per packet per
// viewer is otherwise the largest share of the sending CPU. Datagrams from
// other goroutines (RTCP, STUN, DTLS) that arrive while a window is open
// wait at most until it ends.
type batchConn struct {
	*net.UDPConn
	bw *ipv4.PacketConn // nil: no sendmmsg (not Linux): never queue

	mu    sync.Mutex
	open  int // windows open
	n     int // datagrams queued
	msgs  []ipv4.Message
	slots []batchSlot

	failed atomic.Uint64 // datagrams sendmmsg refused (e.g. unreachable)
}

type batchSlot struct {
	buf  [1500]byte
	addr net.UDPAddr
	ip   [16]byte
}

func newBatchConn(c *net.UDPConn) *batchConn {
	b := &batchConn{UDPConn: c}
	if runtime.GOOS == "linux" {
		b.bw = ipv4.NewPacketConn(c)
		b.msgs = make([]ipv4.Message, batchSize)
		b.slots = make([]batchSlot, batchSize)
		for i := range b.msgs {
			b.msgs[i].Buffers = make([][]byte, 1)
		}
	}
	return b
}

// begin opens a batch window; end closes it and sends what was queued.
func (c *batchConn) begin() {
	c.mu.Lock()
	c.open++
	c.mu.Unlock()
}

func (c *batchConn) end() {
	c.mu.Lock()
	c.open--
	if c.n > 0 {
		c.flushLocked()
	}
	c.mu.Unlock()
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter.
func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.UDPConn.ReadFromUDPAddrPort(b)
}

// WriteToAddrPort implements ice.AddrPortReaderWriter: the mux's write path.
func (c *batchConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	c.mu.Lock()
	if c.open == 0 || c.bw == nil || len(b) > len(c.slots[0].buf) {
		if c.n > 0 {
			c.flushLocked() // keep this socket's datagrams in order
		}
		c.mu.Unlock()
		return c.UDPConn.WriteToUDPAddrPort(b, addr)
	}
	s, m := &c.slots[c.n], &c.msgs[c.n]
	m.Buffers[0] = s.buf[:copy(s.buf[:], b)]
	s.ip = addr.Addr().As16()
	s.addr.IP, s.addr.Port = s.ip[:], int(addr.Port())
	m.Addr = &s.addr
	c.n++
	if c.n == batchSize {
		c.flushLocked()
	}
	c.mu.Unlock()
	return len(b), nil
}

// WriteTo implements net.PacketConn through the same queue.
func (c *batchConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if a, ok := addr.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(b, a.AddrPort())
	}
	return c.UDPConn.WriteTo(b, addr)
}

// flushLocked sends the queue. A datagram the kernel refuses (its
// destination unreachable) is skipped: UDP delivery is best effort, and
// the others must still go.
func (c *batchConn) flushLocked() {
	for i := 0; i < c.n; {
		k, err := c.bw.WriteBatch(c.msgs[i:c.n], 0)
		i += max(k, 0) // -1 with an error
		if err != nil {
			c.failed.Add(1)
			i++
		}
	}
	c.n = 0
}
