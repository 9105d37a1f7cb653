package stream

import (
	"sync"
	"sync/atomic"
	"time"
)

// rtpHeaderSize is the size of every RTP header the stream marshals: packets
// are re-marshalled without CSRCs or header extensions, so readers can patch
// the fixed header (SSRC, sequence number) per session without parsing it.
const rtpHeaderSize = 12

// Packet is one RTP packet of a variant, marshalled once and shared by every
// reader of that variant. It is reference counted: the publisher holds one
// reference while it distributes the packet, each reader queue and the GOP
// cache hold one each, and the last Release returns it to the pool.
type Packet struct {
	// Media is the index of the packet's media in the variant's description.
	Media int
	// Buf is the marshalled RTP packet: a 12-byte header and the payload.
	Buf []byte
	// NTP is the wall-clock capture time of the packet.
	NTP time.Time
	// Key marks the first packet of a video keyframe access unit: a reader
	// that starts here, or resumes here after drops, decodes cleanly.
	Key bool

	refs atomic.Int32
	pool *sync.Pool
}

// Header returns the fixed 12-byte RTP header.
func (p *Packet) Header() []byte { return p.Buf[:rtpHeaderSize] }

// Payload returns the RTP payload.
func (p *Packet) Payload() []byte { return p.Buf[rtpHeaderSize:] }

// PayloadType returns the RTP payload type.
func (p *Packet) PayloadType() uint8 { return p.Buf[1] & 0x7f }

// Timestamp returns the RTP timestamp.
func (p *Packet) Timestamp() uint32 {
	b := p.Buf[4:8]
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func (p *Packet) retain() { p.refs.Add(1) }

// Hold keeps the packet beyond its Run callback (a depacketizer holding a
// fragment until its access unit is complete); each Hold needs its own
// Release.
func (p *Packet) Hold() { p.retain() }

// Release drops one reference. Readers call it only for their own Hold:
// Reader.Run releases every packet it handed to its callback once the
// callback returns.
func (p *Packet) Release() {
	if p.refs.Add(-1) == 0 {
		p.pool.Put(p)
	}
}

// packetClasses are the buffer capacities packets come in: audio frames
// (Opus, AAC: ~100–400 bytes) and the last fragments of video NAL units do
// not each hold an MTU-sized buffer while they sit in a GOP cache.
var packetClasses = [...]int{256, 640, 1500}

// packetPool hands out packets whose buffers are reused: after warm-up, the
// publish path allocates nothing. One pool serves every stream of a hub, so
// the packets a camera's GOP cache frees at a keyframe serve the other
// cameras' growing GOPs instead of waiting, per camera, for its next GOP.
type packetPool struct{ classes [len(packetClasses)]sync.Pool }

func newPacketPool() *packetPool {
	pp := &packetPool{}
	for i, c := range packetClasses {
		pool := &pp.classes[i]
		pool.New = func() any { return &Packet{Buf: make([]byte, 0, c), pool: pool} }
	}
	return pp
}

func (pp *packetPool) get(size int) *Packet {
	i := 0
	for i < len(packetClasses)-1 && size > packetClasses[i] {
		i++
	}
	p := pp.classes[i].Get().(*Packet)
	if cap(p.Buf) < size {
		p.Buf = make([]byte, size) // larger than an MTU: the largest class grows
	}
	p.Buf = p.Buf[:size]
	p.refs.Store(1)
	return p
}
