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
// owned by the variant's pump goroutine: one unmarshal, at most one copy,
// and one WriteRTP per packet for all peers.
//
// H264 is re-chunked to maxPayload: a NAL unit larger than that is sent as
// FU-As filled to the limit across the upstream's own fragments, so that a
// camera's 1400-byte fragments become as few viewer packets as the bytes
// need (cutting each of them in two would send ~1.5× the packets, and every
// packet costs an SRTP seal and a send per viewer).
type mediaOut struct {
	w         rtpWriter // the shared *webrtc.TrackLocalStaticRTP
	mime      string
	clockRate uint32
	video     bool
	h264      bool    // re-chunked (H265 is forwarded as the camera packetized it)
	aac       *aacOut // the camera's AAC, sent as Opus (transcoded.go); nil: forwarded as is

	pkt     rtp.Packet
	scratch [maxPayload]byte // FU-A being built

	// The NAL unit being carried across upstream FU-As: fuOpen while its
	// end has not arrived, fuSent once its first fragment went out; carry
	// is the unit's data not sent yet (behind the 2-byte FU header slot of
	// scratch).
	fuOpen bool
	fuSent bool
	fuHdr  byte
	carry  int

	// Output numbering: out = in + offset. Re-chunking one packet into k
	// adds k-1 to seqOff; a new upstream stream (rebase) moves both offsets
	// so that viewers see continuous sequence numbers and timestamps.
	seqOff   uint16
	tsOff    uint32
	nextSeq  uint16
	lastIn   uint16
	lastTS   uint32
	lastWall time.Time
	started  bool
	rebase   bool

	// B-frame detection (video): the input timestamp of the last access
	// unit; a unit whose timestamp is before it is out of presentation
	// order, which only B-frames cause (mediamtx's test too).
	auTS      uint32
	auStarted bool
	reordered bool
}

// fuChunk is the NAL unit data one FU-A carries.
const fuChunk = maxPayload - 2

// write forwards one packet of the variant; now is the batch's wall clock.
func (o *mediaOut) write(p *stream.Packet, now time.Time) {
	b := p.Buf
	if len(b) < 12 {
		return
	}
	if o.aac != nil {
		o.aac.write(o, b)
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
		o.fuOpen = false
		o.auStarted = false
	} else if o.started && inSeq != o.lastIn+1 {
		// Lost upstream: the unit being carried cannot be completed. Its
		// rest is dropped; the viewer sees the gap and discards the unit.
		o.fuOpen = false
	}
	o.lastIn = inSeq
	if o.video {
		o.checkOrder(inTS)
	}
	h := &o.pkt.Header
	h.Version = 2
	h.PayloadType = b[1] & 0x7f
	h.Timestamp = inTS + o.tsOff
	start := inSeq + o.seqOff
	o.nextSeq = start
	marker := b[1]&0x80 != 0
	if o.h264 {
		o.writeH264(b[12:], marker)
	} else {
		o.send(b[12:], marker)
	}
	o.seqOff += o.nextSeq - start - 1
	o.lastTS, o.lastWall, o.started = h.Timestamp, now, true
}

// checkOrder notes a video timestamp going backwards between access units.
func (o *mediaOut) checkOrder(ts uint32) {
	if !o.auStarted {
		o.auTS, o.auStarted = ts, true
		return
	}
	if ts != o.auTS {
		if int32(ts-o.auTS) < 0 {
			o.reordered = true
		}
		o.auTS = ts
	}
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

// writeH264 forwards one H264 payload (RFC 6184, packetization mode 1):
// FU-As and oversized single NAL units are re-chunked, oversized STAP-As
// split into their NAL units, the rest passes as is. The marker goes on the
// last packet.
func (o *mediaOut) writeH264(payload []byte, marker bool) {
	if len(payload) == 0 {
		return
	}
	typ := payload[0] & 0x1f
	if typ == 28 {
		o.writeFUA(payload, marker)
		return
	}
	o.fuOpen = false // a unit left open lost its end upstream
	switch {
	case len(payload) <= maxPayload:
		o.send(payload, marker)
	case typ >= 1 && typ <= 23:
		o.openFU(payload[0])
		o.feedFU(payload[1:], true, marker)
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
				o.openFU(nalu[0])
				o.feedFU(nalu[1:], true, marker && last)
			}
		}
	default: // STAP-B, MTAP, FU-B: not in mode 1, pass through
		o.send(payload, marker)
	}
}

// writeFUA carries one upstream FU-A into the unit being re-chunked.
func (o *mediaOut) writeFUA(payload []byte, marker bool) {
	if len(payload) < 2 {
		return
	}
	first, end := payload[1]&0x80 != 0, payload[1]&0x40 != 0
	if first {
		o.openFU(payload[0]&0xe0 | payload[1]&0x1f)
	} else if !o.fuOpen {
		return // the unit's start was lost: undecodable, not worth sending
	}
	// Even fragments that would fit are filled up from the next ones: fewer
	// packets cost less than the copy.
	o.feedFU(payload[2:], end, marker)
}

// openFU starts carrying a NAL unit whose header byte is hdr.
func (o *mediaOut) openFU(hdr byte) {
	o.fuOpen, o.fuSent, o.fuHdr, o.carry = true, false, hdr, 0
}

// feedFU adds data to the carried unit, sending every full FU-A that more
// data follows; end sends the rest as the unit's last fragment.
func (o *mediaOut) feedFU(data []byte, end, marker bool) {
	for {
		room := fuChunk - o.carry
		if len(data) <= room {
			o.carry += copy(o.scratch[2+o.carry:], data)
			if end {
				o.flushFU(true, marker)
			}
			return
		}
		o.carry += copy(o.scratch[2+o.carry:], data[:room])
		data = data[room:]
		o.flushFU(false, false)
	}
}

// flushFU sends the carried data as one FU-A.
func (o *mediaOut) flushFU(end, marker bool) {
	fu := o.fuHdr & 0x1f
	if !o.fuSent {
		fu |= 0x80
	}
	if end {
		fu |= 0x40
	}
	b := o.scratch[:2+o.carry]
	b[0], b[1] = o.fuHdr&0xe0|28, fu
	o.send(b, marker)
	o.fuSent, o.fuOpen, o.carry = true, !end, 0
}
