package webrtc

import (
	"time"

	"github.com/pion/rtp"

	"github.com/camgate/camgate/gateway/stream"
)

// maxPayload is the largest RTP payload sent to viewers: pion's outbound
// MTU (1200 bytes) less the RTP header, so that an SRTP packet fits a 1280
// byte IPv6 path. Cameras and the demo packetize up to ~1450 bytes, which
// would be fragmented at the IP level (or dropped) on many paths.
const maxPayload = 1200 - 12

// rtpWriter is what mediaOut writes to: a shared local track, which sends
// each packet to every bound peer.
type rtpWriter interface {
	WriteRTP(p *rtp.Packet) error
}

// mediaOut writes one medium of a variant to its shared local track. It is
// owned by the variant's pump goroutine: one unmarshal, at most one
// re-fragmentation, and one WriteRTP per packet for all peers.
type mediaOut struct {
	w         rtpWriter // the shared *webrtc.TrackLocalStaticRTP
	mime      string
	clockRate uint32
	h264      bool

	pkt     rtp.Packet
	scratch [maxPayload]byte // FU-A being built

	// Output numbering: out = in + offset. Re-fragmenting one packet into k
	// adds k-1 to seqOff; a new upstream stream (rebase) moves both offsets
	// so that viewers see continuous sequence numbers and timestamps.
	seqOff   uint16
	tsOff    uint32
	nextSeq  uint16
	lastTS   uint32
	lastWall time.Time
	started  bool
	rebase   bool
}

// write forwards one packet of the variant; now is the batch's wall clock.
func (o *mediaOut) write(p *stream.Packet, now time.Time) {
	b := p.Buf
	if len(b) < 12 {
		return
	}
	inSeq := uint16(b[2])<<8 | uint16(b[3])
	inTS := p.Timestamp()
	if o.rebase {
		o.rebase = false
		if o.started {
			elapsed := uint32(now.Sub(o.lastWall).Seconds() * float64(o.clockRate))
			o.seqOff = o.nextSeq - inSeq
			o.tsOff = o.lastTS + elapsed - inTS
		}
	}
	h := &o.pkt.Header
	h.Version = 2
	h.PayloadType = b[1] & 0x7f
	h.Timestamp = inTS + o.tsOff
	start := inSeq + o.seqOff
	o.nextSeq = start
	marker := b[1]&0x80 != 0
	if o.h264 && len(b)-12 > maxPayload {
		o.writeH264(b[12:], marker)
	} else {
		o.send(b[12:], marker)
	}
	o.seqOff += o.nextSeq - start - 1
	o.lastTS, o.lastWall, o.started = h.Timestamp, now, true
}

// send writes one RTP packet to every peer bound to the track. Errors are
// per peer (a closing peer); its state callback cleans it up.
func (o *mediaOut) send(payload []byte, marker bool) {
	o.pkt.Marker = marker
	o.pkt.SequenceNumber = o.nextSeq
	o.pkt.Payload = payload
	o.nextSeq++
	_ = o.w.WriteRTP(&o.pkt)
}

// writeH264 re-fragments an oversized H264 payload (RFC 6184, packetization
// mode 1): single NAL units and FU-As are cut into smaller FU-As, STAP-As
// into their NAL units. The marker goes on the last packet only.
func (o *mediaOut) writeH264(payload []byte, marker bool) {
	switch typ := payload[0] & 0x1f; {
	case typ >= 1 && typ <= 23:
		o.writeFU(payload[0], payload[1:], true, true, marker)
	case typ == 24: // STAP-A: 16-bit size, NAL unit, ...
		nalus := payload[1:]
		for len(nalus) >= 2 {
			n := int(nalus[0])<<8 | int(nalus[1])
			if n == 0 || 2+n > len(nalus) {
				return // malformed: the rest is not decodable anyway
			}
			nalu := nalus[2 : 2+n]
			nalus = nalus[2+n:]
			last := len(nalus) < 2
			if len(nalu) <= maxPayload {
				o.send(nalu, marker && last)
			} else {
				o.writeFU(nalu[0], nalu[1:], true, true, marker && last)
			}
		}
	case typ == 28: // FU-A
		if len(payload) < 2 {
			return
		}
		hdr := payload[0]&0xe0 | payload[1]&0x1f
		o.writeFU(hdr, payload[2:], payload[1]&0x80 != 0, payload[1]&0x40 != 0, marker)
	default: // STAP-B, MTAP, FU-B: not in mode 1, pass through
		o.send(payload, marker)
	}
}

// writeFU sends data (a NAL unit without its header byte hdr, or a part of
// one) as FU-A fragments; start/end say whether data begins/ends the unit.
func (o *mediaOut) writeFU(hdr byte, data []byte, start, end, marker bool) {
	const chunk = maxPayload - 2
	ind, typ := hdr&0xe0|28, hdr&0x1f
	for first := true; len(data) > 0; first = false {
		n := min(len(data), chunk)
		last := n == len(data)
		fu := typ
		if first && start {
			fu |= 0x80
		}
		if last && end {
			fu |= 0x40
		}
		b := o.scratch[:2+n]
		b[0], b[1] = ind, fu
		copy(b[2:], data[:n])
		data = data[n:]
		o.send(b, marker && last)
	}
}
