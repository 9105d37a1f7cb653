package rtsp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/camgate/camgate/gateway/stream"
)

// How a UDP viewer joins its variant's shared UDP stream.
//
// All UDP viewers of a variant get live packets from one gortsplib
// ServerStream, fed by one pump (startUDPPump): a packet is marshalled once
// for all of them. A viewer that joins needs the cached GOP first, which the
// others must not get again. gortsplib makes a session a reader of its stream
// the moment it plays, with no way to hold it back, and a packet written to
// the session alone (ServerSession.WritePacketRTP) goes through the same
// queue as the stream's, with the same bytes: neither can be told apart from,
// nor ordered against, the shared packets. So the hand-over is done at the
// one place that sees both, the RTP socket, which camgate opens for gortsplib
// (Server.ListenPacket):
//
//   - while a viewer replays, a paced reader of its own (stream.Reader: the
//     GOP, then live packets) writes to the viewer's client ports directly
//     on the socket, each packet with the shared stream's SSRC, sequence
//     number and timestamp (as the TCP writer does);
//   - the shared stream's datagrams to those ports are dropped meanwhile;
//   - once the replay has caught up (its queue is empty), it hands over and
//     stops: from then on, per media, the shared stream's datagrams pass from
//     the first one the replay did not send, and the port is forgotten.
//
// The viewer sees one sequence: no gap, no duplicate. After the hand-over it
// costs what any joined viewer costs; while any viewer of the server joins,
// each RTP datagram costs a map lookup.

// errHandedOver ends a replay that caught up with the shared stream.
var errHandedOver = errors.New("handed over to the shared stream")

// udpJoins is the set of client RTP ports whose viewers have not yet joined
// the shared stream.
type udpJoins struct {
	pending atomic.Int32 // len(ports): 0 lets every datagram through untouched

	mu    sync.RWMutex // guards ports
	ports map[netip.AddrPort]joinPort
}

// joinPort is one media of one joining viewer.
type joinPort struct {
	j     *udpJoin
	media int
}

func addrKey(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// pass reports whether a datagram of the shared stream goes out to addr.
func (js *udpJoins) pass(b []byte, addr net.Addr) bool {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || len(b) < 4 {
		return true
	}
	js.mu.RLock()
	p, ok := js.ports[addrKey(ua.AddrPort())]
	js.mu.RUnlock()
	if !ok {
		return true
	}
	return p.j.shared(p.media, uint16(b[2])<<8|uint16(b[3]))
}

func (js *udpJoins) add(ap netip.AddrPort, p joinPort) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.ports == nil {
		js.ports = make(map[netip.AddrPort]joinPort)
	}
	js.ports[ap] = p
	js.pending.Store(int32(len(js.ports)))
}

func (js *udpJoins) remove(ap netip.AddrPort, j *udpJoin) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if p, ok := js.ports[ap]; ok && p.j == j {
		delete(js.ports, ap)
	}
	js.pending.Store(int32(len(js.ports)))
}

// udpConn is gortsplib's RTP socket: the shared stream's datagrams to a
// joining viewer are held back (udpJoins.pass); the viewer's replay writes
// to the embedded socket directly.
type udpConn struct {
	*net.UDPConn
	joins *udpJoins
}

func (c *udpConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.joins.pending.Load() > 0 && !c.joins.pass(b, addr) {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, addr)
}

// udpJoin is one UDP viewer's way onto the shared stream: its replay, then
// the hand-over.
type udpJoin struct {
	joins  *udpJoins
	conn   *net.UDPConn     // the RTP socket, unfiltered
	addrs  []netip.AddrPort // per variant media: the client's RTP port (invalid: not set up)
	ssrcs  []uint32         // per variant media: the shared stream's SSRC
	reader *stream.Reader   // paced: the GOP, then live packets, until the hand-over

	// next and started are the replay's, per media: the sequence number
	// after the last packet it sent, and whether it sent any. The replay
	// goroutine writes them before setting handedOver (mu held), the
	// socket reads them after.
	next    []uint16
	started []bool
	buf     []byte

	mu         sync.Mutex
	handedOver bool
}

// newUDPJoin holds back the shared stream's packets to addrs until the
// replay hands over. Its queue holds at least twice the cached GOP: the
// GOP, and what the camera sends while it is replayed (a reader whose queue
// cannot take the GOP waits for the next keyframe instead).
func newUDPJoin(joins *udpJoins, conn *net.UDPConn, addrs []netip.AddrPort, ssrcs []uint32, queue, gop int) *udpJoin {
	j := &udpJoin{
		joins:   joins,
		conn:    conn,
		addrs:   addrs,
		ssrcs:   ssrcs,
		reader:  stream.NewReader(max(queue, stream.DefaultQueueSize, 2*gop)),
		next:    make([]uint16, len(addrs)),
		started: make([]bool, len(addrs)),
	}
	j.reader.SetPaced()
	for m, ap := range addrs {
		if ap.IsValid() {
			joins.add(ap, joinPort{j: j, media: m})
		}
	}
	return j
}

// run replays until the hand-over (nil), or until ctx is done or the reader
// is closed. The reader must have been added to the variant.
func (j *udpJoin) run(ctx context.Context) error {
	defer j.reader.Close()
	err := j.reader.Run(ctx, j.writeBatch)
	if errors.Is(err, errHandedOver) {
		return nil
	}
	j.stop()
	return err
}

func (j *udpJoin) writeBatch(batch []*stream.Packet) error {
	for _, p := range batch {
		m := p.Media
		if m >= len(j.addrs) || !j.addrs[m].IsValid() {
			continue
		}
		j.buf = append(j.buf[:0], p.Buf...)
		s := j.ssrcs[m]
		j.buf[8], j.buf[9], j.buf[10], j.buf[11] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
		// A lost datagram is the viewer's loss, as on the shared stream.
		_, _ = j.conn.WriteToUDPAddrPort(j.buf, j.addrs[m])
		j.next[m] = (uint16(p.Buf[2])<<8 | uint16(p.Buf[3])) + 1
		j.started[m] = true
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	// Nothing queued beyond this batch: every packet published so far has
	// been sent; the shared stream has the ones after.
	if j.reader.Queued() == len(batch) {
		j.handedOver = true
		return errHandedOver
	}
	return nil
}

// shared reports whether the shared stream's packet seq of media m goes out
// to the viewer; the first one that does ends the join of that media.
func (j *udpJoin) shared(m int, seq uint16) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.handedOver {
		return false // the replay sends it, in order
	}
	if j.started[m] && int16(seq-j.next[m]) < 0 {
		return false // the replay sent it
	}
	j.joins.remove(j.addrs[m], j)
	return true
}

// stop forgets the viewer's ports (session closed, or replay ended early).
func (j *udpJoin) stop() {
	for _, ap := range j.addrs {
		if ap.IsValid() {
			j.joins.remove(ap, j)
		}
	}
}
