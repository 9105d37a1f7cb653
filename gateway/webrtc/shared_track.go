package webrtc

import (
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// historySize is how many video packets are kept for retransmission: about
// two seconds of a 4 Mbit/s stream, more than a NACK round trip.
const historySize = 512

// sharedTrack is the local track of one camera variant and medium, bound to
// every peer watching it. Beside pion's fan-out it keeps the recently sent
// packets once for all peers and each peer's binding, so that a peer's NACK
// is answered from the shared history on that peer's stream alone. pion's
// NACK responder would instead copy (and allocate) every packet per peer.
type sharedTrack struct {
	*webrtc.TrackLocalStaticRTP

	mu       sync.RWMutex // guards bindings and history
	bindings map[webrtc.SSRC]trackBinding
	history  []sentPacket // indexed by sequence number; nil: no retransmission
}

type trackBinding struct {
	pt webrtc.PayloadType
	w  webrtc.TrackLocalWriter
}

type sentPacket struct {
	seq    uint16
	valid  bool
	marker bool
	ts     uint32
	n      int
	buf    [maxPayload]byte
}

func newSharedTrack(c webrtc.RTPCodecCapability, id, streamID string, retransmit bool) (*sharedTrack, error) {
	inner, err := webrtc.NewTrackLocalStaticRTP(c, id, streamID)
	if err != nil {
		return nil, err
	}
	t := &sharedTrack{TrackLocalStaticRTP: inner, bindings: make(map[webrtc.SSRC]trackBinding)}
	if retransmit {
		t.history = make([]sentPacket, historySize)
	}
	return t, nil
}

// Bind implements webrtc.TrackLocal, remembering the peer's stream.
func (t *sharedTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, err := t.TrackLocalStaticRTP.Bind(ctx)
	if err == nil {
		t.mu.Lock()
		t.bindings[ctx.SSRC()] = trackBinding{pt: c.PayloadType, w: ctx.WriteStream()}
		t.mu.Unlock()
	}
	return c, err
}

// Unbind implements webrtc.TrackLocal.
func (t *sharedTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	delete(t.bindings, ctx.SSRC())
	t.mu.Unlock()
	return t.TrackLocalStaticRTP.Unbind(ctx)
}

// WriteRTP sends p to every bound peer and keeps a copy for NACKs. Payloads
// are at most maxPayload bytes (mediaOut re-fragments larger ones).
func (t *sharedTrack) WriteRTP(p *rtp.Packet) error {
	if t.history != nil && len(p.Payload) <= maxPayload {
		t.mu.Lock()
		s := &t.history[p.SequenceNumber%historySize]
		s.seq, s.valid, s.marker, s.ts = p.SequenceNumber, true, p.Marker, p.Timestamp
		s.n = copy(s.buf[:], p.Payload)
		t.mu.Unlock()
	}
	return t.TrackLocalStaticRTP.WriteRTP(p)
}

// handleRTCP answers the NACKs in a peer's RTCP (its sender's Read output).
// It reports how many packets were sent again.
func (t *sharedTrack) handleRTCP(b []byte) int {
	if t.history == nil {
		return 0
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return 0
	}
	sent := 0
	for _, p := range pkts {
		nack, ok := p.(*rtcp.TransportLayerNack)
		if !ok {
			continue
		}
		for i := range nack.Nacks {
			nack.Nacks[i].Range(func(seq uint16) bool {
				if t.resend(webrtc.SSRC(nack.MediaSSRC), seq) {
					sent++
				}
				return true
			})
		}
	}
	return sent
}

// resend writes one remembered packet to one peer's stream.
func (t *sharedTrack) resend(ssrc webrtc.SSRC, seq uint16) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	b, ok := t.bindings[ssrc]
	s := &t.history[seq%historySize]
	if !ok || !s.valid || s.seq != seq {
		return false
	}
	h := &rtp.Header{Version: 2, Marker: s.marker, PayloadType: uint8(b.pt), SequenceNumber: seq, Timestamp: s.ts, SSRC: uint32(ssrc)}
	_, err := b.w.WriteRTP(h, s.buf[:s.n])
	return err == nil
}
