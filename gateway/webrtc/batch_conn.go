package webrtc

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
)

const (
	queueSize   = 1024  // datagrams one window queues before it sends
	maxSegments = 64    // datagrams in one GSO send
	maxGSOBytes = 65000 // bytes in one GSO send (an IP packet's limit)
)

// batchConn is the ICE mux's UDP socket. Outside a batch window it sends
// each datagram at once, as *net.UDPConn does. Inside one — a pump fanning
// a batch of packets out to every peer — datagrams are queued, and the
// window's end sends them with sendmmsg; where the kernel offers UDP GSO,
// each peer's run of equal-sized datagrams (a frame's packets) becomes one
// message the kernel splits late. A syscall and a trip down the IP stack
// per packet per viewer is otherwise most of the sending CPU. Datagrams
// from other goroutines (RTCP, STUN, DTLS) that arrive while a window is
// open wait at most until it ends.
type batchConn struct {
	*net.UDPConn
	bw  *ipv4.PacketConn // nil: no sendmmsg (not Linux): never queue
	gso atomic.Bool      // the kernel takes UDP_SEGMENT

	mu     sync.Mutex
	open   int // windows open
	n      int // datagrams queued
	slots  []batchSlot
	msgs   []ipv4.Message // one flush's messages
	bufs   [][]byte       // their Buffers, back to back
	oob    []byte         // their UDP_SEGMENT control messages
	next   []int32        // per datagram: the next one to the same peer
	heads  []int32        // per peer, in order of appearance: its first
	tails  []int32        // and last datagram
	groups map[netip.AddrPort]int32

	failed   atomic.Uint64 // datagrams the kernel refused (e.g. unreachable)
	messages atomic.Uint64 // messages handed to sendmmsg
}

type batchSlot struct {
	buf  [1500]byte
	n    int
	to   netip.AddrPort
	addr net.UDPAddr
	ip   [16]byte
}

func newBatchConn(c *net.UDPConn) *batchConn {
	b := &batchConn{UDPConn: c}
	if runtime.GOOS != "linux" {
		return b
	}
	b.bw = ipv4.NewPacketConn(c)
	b.slots = make([]batchSlot, queueSize)
	b.msgs = make([]ipv4.Message, queueSize)
	b.bufs = make([][]byte, queueSize)
	b.oob = make([]byte, queueSize*segmentCmsgSpace)
	b.next = make([]int32, queueSize)
	b.heads = make([]int32, queueSize)
	b.tails = make([]int32, queueSize)
	b.groups = make(map[netip.AddrPort]int32)
	b.gso.Store(gsoSupported(c))
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
func (c *batchConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	c.mu.Lock()
	if c.open == 0 || c.bw == nil || len(b) > len(c.slots[0].buf) {
		if c.n > 0 {
			c.flushLocked() // keep this socket's datagrams in order
		}
		c.mu.Unlock()
		return c.UDPConn.WriteToUDPAddrPort(b, to)
	}
	s := &c.slots[c.n]
	s.n = copy(s.buf[:], b)
	s.to = to
	s.ip = to.Addr().As16()
	s.addr.IP, s.addr.Port = s.ip[:], int(to.Port())
	c.n++
	if c.n == queueSize {
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

// flushLocked sends the queue: one message per datagram, or with GSO one
// per run of a peer's datagrams (in their order) that share a size, the
// run's last one possibly shorter.
func (c *batchConn) flushLocked() {
	nm := 0
	if !c.gso.Load() {
		for i := range c.n {
			c.bufs[i] = c.slots[i].buf[:c.slots[i].n]
			c.msgs[i] = ipv4.Message{Buffers: c.bufs[i : i+1], Addr: &c.slots[i].addr}
		}
		nm = c.n
	} else {
		nm = c.groupLocked()
	}
	c.sendLocked(c.msgs[:nm])
	c.n = 0
}

// groupLocked builds the GSO messages; it returns how many.
func (c *batchConn) groupLocked() int {
	clear(c.groups)
	ng := int32(0)
	for i := range int32(c.n) {
		c.next[i] = -1
		to := c.slots[i].to
		if g, ok := c.groups[to]; ok {
			c.next[c.tails[g]] = i
			c.tails[g] = i
			continue
		}
		c.groups[to] = ng
		c.heads[ng], c.tails[ng] = i, i
		ng++
	}
	nm, nb, no := 0, 0, 0
	for g := range ng {
		for i := c.heads[g]; i >= 0; {
			first, seg := i, c.slots[i].n
			start, total := nb, 0
			for i >= 0 && nb-start < maxSegments && c.slots[i].n <= seg && total+c.slots[i].n <= maxGSOBytes {
				s := &c.slots[i]
				c.bufs[nb] = s.buf[:s.n]
				nb++
				total += s.n
				i = c.next[i]
				if s.n < seg {
					break // a shorter one ends the run
				}
			}
			m := &c.msgs[nm]
			nm++
			*m = ipv4.Message{Buffers: c.bufs[start:nb], Addr: &c.slots[first].addr}
			if nb-start > 1 {
				m.OOB = c.oob[no : no+segmentCmsgSpace]
				putSegmentCmsg(m.OOB, seg)
				no += segmentCmsgSpace
			}
		}
	}
	return nm
}

// sendLocked hands the messages to sendmmsg. A datagram the kernel
// refuses (its destination unreachable) is skipped: UDP delivery is best
// effort, and the others must still go. A refused GSO message is sent
// again one datagram at a time.
func (c *batchConn) sendLocked(ms []ipv4.Message) {
	c.messages.Add(uint64(len(ms)))
	for i := 0; i < len(ms); {
		k, err := c.bw.WriteBatch(ms[i:], 0)
		i += max(k, 0) // -1 with an error
		if err == nil {
			continue
		}
		m := &ms[i]
		i++
		if m.OOB == nil {
			c.failed.Add(1)
			continue
		}
		// A GSO message refused as such: EIO, the device cannot segment
		// (never again, then); EINVAL, e.g. datagrams larger than the
		// path's MTU, which alone would be fragmented.
		if errors.Is(err, syscall.EIO) {
			c.gso.Store(false)
		}
		to := m.Addr.(*net.UDPAddr).AddrPort()
		for _, b := range m.Buffers {
			if _, err := c.UDPConn.WriteToUDPAddrPort(b, to); err != nil {
				c.failed.Add(1)
			}
		}
	}
}
