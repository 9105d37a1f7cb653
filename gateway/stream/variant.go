package stream

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtp"
)

// Variant names.
const (
	VariantFull  = "full"  // every track
	VariantVideo = "video" // audio removed, for viewers without `sound`
)

// maxGOPPackets bounds the GOP cache; a longer GOP is not cached and new
// readers wait for the next keyframe instead.
const maxGOPPackets = 4096

// Variant is one published form of a camera's stream. Packets are
// marshalled once per variant and shared by all its readers.
type Variant struct {
	// Name is VariantFull or VariantVideo.
	Name string
	// Desc lists the variant's medias; Packet.Media indexes it. It is fixed
	// for the life of the stream, across upstream reconnects.
	Desc *description.Session

	keyed bool // has a video media whose keyframes are detected
	pool  *packetPool
	users *readerCounts // the stream's readers, both variants

	mu      sync.Mutex // guards everything below; held while publishing
	readers []*Reader
	gop     []*Packet // packets since the last keyframe, or nil
	gopOn   bool
	// gopBytes and gopStart measure the cached GOP, for byteRate.
	gopBytes int
	gopStart time.Time
	seq      []uint16 // next sequence number per media
	closed   bool

	dropped atomic.Uint64 // packets lost by slow readers, all readers together
	// byteRate is the variant's bytes per second over its last complete
	// GOP (0 until one was cached); paced readers go a few times faster.
	byteRate atomic.Int64
}

func newVariant(name string, desc *description.Session, keyed bool, pool *packetPool, users *readerCounts) *Variant {
	return &Variant{
		Name:  name,
		Desc:  desc,
		keyed: keyed,
		pool:  pool,
		users: users,
		seq:   make([]uint16, len(desc.Medias)),
	}
}

// AddReader attaches r: it first receives the cached GOP (so it starts on a
// keyframe at once), then live packets. It returns ErrClosed when the stream
// has ended.
func (v *Variant) AddReader(r *Reader) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return ErrClosed
	}
	r.variant.Store(v)
	switch {
	case r.live:
	case v.gopOn && uint64(len(v.gop)) <= r.mask+1:
		for _, p := range v.gop {
			r.push(p, v.keyed)
		}
	case v.keyed:
		r.waitKey = true
	}
	v.readers = append(v.readers, r)
	v.users.add(r, 1)
	return nil
}

// RemoveReader detaches r; it receives nothing more.
func (v *Variant) RemoveReader(r *Reader) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, x := range v.readers {
		if x == r {
			last := len(v.readers) - 1
			v.readers[i] = v.readers[last]
			v.readers[last] = nil
			v.readers = v.readers[:last]
			v.users.add(r, -1)
			break
		}
	}
}

// Keyframe appends to dst the packets of the cached GOP's keyframe access
// unit (the key packet and the packets of its media that share its RTP
// timestamp), each retained: the caller Releases every one. It appends
// nothing when no GOP is cached. It is how a snapshot reads the latest
// keyframe without becoming a reader; the key packet's timestamp names the
// keyframe.
func (v *Variant) Keyframe(dst []*Packet) []*Packet {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.gopOn || len(v.gop) == 0 || !v.gop[0].Key {
		return dst
	}
	key := v.gop[0]
	ts := key.Timestamp()
	for _, p := range v.gop {
		if p.Media != key.Media {
			continue
		}
		if p.Timestamp() != ts {
			break
		}
		p.retain()
		dst = append(dst, p)
	}
	return dst
}

// GOPPackets returns how many packets the GOP cache holds: what a reader
// joining now gets before the live packets.
func (v *Variant) GOPPackets() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.gop)
}

// Dropped returns how many packets slow readers of this variant lost.
func (v *Variant) Dropped() uint64 { return v.dropped.Load() }

// Readers returns the number of attached readers.
func (v *Variant) Readers() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.readers)
}

// publish marshals pkt once (with the variant's own sequence numbers and the
// given timestamp) and queues it to every reader. It returns the packet with
// one reference held for the caller (nil when the variant is closed), so
// that another variant can share it (publishShared); the caller releases it.
func (v *Variant) publish(media int, pkt *rtp.Packet, ts uint32, ntp time.Time, key, gop bool) *Packet {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil
	}
	p := v.pool.get(rtpHeaderSize + len(pkt.Payload))
	p.Media, p.NTP, p.Key = media, ntp, key
	b := p.Buf
	b[0] = 0x80 // version 2, no padding, no extension, no CSRC
	b[1] = pkt.PayloadType & 0x7f
	if pkt.Marker {
		b[1] |= 0x80
	}
	s := v.seq[media]
	v.seq[media] = s + 1
	b[2], b[3] = byte(s>>8), byte(s)
	b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
	b[8], b[9], b[10], b[11] = 0, 0, 0, 0 // SSRC: set per session by each writer
	copy(b[rtpHeaderSize:], pkt.Payload)
	v.queue(p, gop)
	return p
}

// publishShared queues a packet another variant marshalled: the same bytes
// (media index, sequence number, timestamp) this variant would have made.
// The video variant shares the full variant's video packets this way, so a
// camera's video is copied and cached once, not once per variant.
func (v *Variant) publishShared(p *Packet, gop bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.seq[p.Media]++
	v.queue(p, gop)
}

// queue caches p in the GOP (when gop) and hands it to every reader (lock
// held).
func (v *Variant) queue(p *Packet, gop bool) {
	if gop {
		v.cacheGOP(p)
	} else if v.gopOn {
		v.clearGOP()
	}
	for _, r := range v.readers {
		if r.push(p, v.keyed) {
			v.dropped.Add(1)
		}
	}
}

// cacheGOP keeps the packets since the last keyframe (lock held).
func (v *Variant) cacheGOP(p *Packet) {
	switch {
	case p.Key:
		now := time.Now()
		if v.gopOn && !v.gopStart.IsZero() {
			if d := now.Sub(v.gopStart); d >= 100*time.Millisecond {
				v.byteRate.Store(int64(float64(v.gopBytes) / d.Seconds()))
			}
		}
		v.clearGOP()
		v.gopOn, v.gopStart = true, now
	case !v.gopOn:
		return
	case len(v.gop) >= maxGOPPackets:
		v.clearGOP()
		return
	}
	p.retain()
	v.gop = append(v.gop, p)
	v.gopBytes += len(p.Buf)
}

func (v *Variant) clearGOP() {
	for i, p := range v.gop {
		p.Release()
		v.gop[i] = nil
	}
	v.gop = v.gop[:0]
	v.gopOn, v.gopBytes = false, 0
}

// resetGOP forgets the cached GOP, e.g. when the upstream reconnects.
func (v *Variant) resetGOP() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clearGOP()
}

func (v *Variant) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	v.clearGOP()
	for _, r := range v.readers {
		r.stop()
	}
	v.readers = nil
}
