package webrtc

import (
	"slices"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// historySize is how many video packets are kept for retransmission: about
// two seconds of a 4 Mbit/s stream, more than a NACK round trip.
const historySize = 512

// maxGOPBytes bounds the cached group of pictures of one video track. A
// longer GOP is not cached: its viewers wait for the next keyframe.
const maxGOPBytes = 8 << 20

// sharedTrack is the local track of one camera variant and medium, bound to
// every peer watching it. It writes each packet to every bound peer itself
// (pion's TrackLocalStaticRTP is kept for codec negotiation only) and, for
// video:
//   - keeps the recently sent packets once for all peers, so that a peer's
//     NACK is answered from the shared history on that peer's stream alone
//     (pion's NACK responder would copy and allocate every packet per peer);
//   - keeps the packets since the last keyframe, and starts a new peer with
//     them (timestamps squeezed to just before the live edge, so the player
//     decodes through them at once and then plays live), so that its first
//     frame does not wait for the camera's next keyframe.
type sharedTrack struct {
	*webrtc.TrackLocalStaticRTP

	mu       sync.RWMutex // guards bindings, history and gop
	bindings []*binding
	history  []sentPacket // indexed by sequence number; nil: no retransmission
	gop      *gopCache    // nil: no replay (audio)
}

// binding is one peer's stream of the track.
type binding struct {
	ssrc webrtc.SSRC
	pt   webrtc.PayloadType
	w    webrtc.TrackLocalWriter
	// pending: bound, not yet started (the GOP replay is due). replayed is
	// the sequence range [replayFrom, replayTo] the replay sent with
	// squeezed timestamps, which the shared history cannot resend.
	pending              bool
	replayed             bool
	replayFrom, replayTo uint16
	hdr                  rtp.Header // scratch for the replay
}

type sentPacket struct {
	seq    uint16
	valid  bool
	marker bool
	ts     uint32
	n      int
	buf    [maxPayload]byte
}

func newSharedTrack(c webrtc.RTPCodecCapability, id, streamID string, video bool) (*sharedTrack, error) {
	inner, err := webrtc.NewTrackLocalStaticRTP(c, id, streamID)
	if err != nil {
		return nil, err
	}
	t := &sharedTrack{TrackLocalStaticRTP: inner}
	if video {
		t.history = make([]sentPacket, historySize)
		t.gop = &gopCache{}
	}
	return t, nil
}

// Bind implements webrtc.TrackLocal, remembering the peer's stream.
func (t *sharedTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, err := t.TrackLocalStaticRTP.Bind(ctx)
	if err == nil {
		t.mu.Lock()
		t.bindings = append(t.bindings, &binding{ssrc: ctx.SSRC(), pt: c.PayloadType, w: ctx.WriteStream(), pending: t.gop != nil})
		t.mu.Unlock()
	}
	return c, err
}

// Unbind implements webrtc.TrackLocal.
func (t *sharedTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	t.bindings = slices.DeleteFunc(t.bindings, func(b *binding) bool { return b.ssrc == ctx.SSRC() })
	t.mu.Unlock()
	return t.TrackLocalStaticRTP.Unbind(ctx)
}

// WriteRTP sends p to every bound peer and keeps a copy for NACKs and GOP
// replay. Payloads are at most maxPayload bytes (mediaOut re-chunks larger
// ones). Errors are per peer (a closing peer): its state callback cleans up.
func (t *sharedTrack) WriteRTP(p *rtp.Packet) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.history != nil && len(p.Payload) <= maxPayload {
		s := &t.history[p.SequenceNumber%historySize]
		s.seq, s.valid, s.marker, s.ts = p.SequenceNumber, true, p.Marker, p.Timestamp
		s.n = copy(s.buf[:], p.Payload)
	}
	if t.gop != nil {
		t.gop.add(p)
	}
	h := p.Header
	for _, b := range t.bindings {
		if b.pending {
			if t.start(b) {
				continue // the replay ended with p
			}
			if b.pending {
				continue // not ready to send yet
			}
		}
		h.SSRC, h.PayloadType = uint32(b.ssrc), uint8(b.pt)
		_, _ = b.w.WriteRTP(&h, p.Payload)
	}
	return nil
}

// start begins a new peer's stream: with the cached GOP, timestamps squeezed
// to the live edge (the last cached packet is the one being written). It
// reports whether the replay was sent; b.pending stays set while the peer's
// stream does not take packets yet (pion connects it right after Bind).
func (t *sharedTrack) start(b *binding) bool {
	g := t.gop
	if !g.valid || len(g.entries) == 0 {
		b.pending = false // nothing to replay: live from here
		return false
	}
	frames := g.frames()
	last := g.entries[len(g.entries)-1].ts
	h := &b.hdr
	h.Version, h.SSRC, h.PayloadType = 2, uint32(b.ssrc), uint8(b.pt)
	frame, prevTS := 0, g.entries[0].ts
	for i := range g.entries {
		e := &g.entries[i]
		if e.ts != prevTS {
			frame, prevTS = frame+1, e.ts
		}
		h.SequenceNumber, h.Marker = e.seq, e.marker
		h.Timestamp = last - uint32(frames-1-frame)
		n, err := b.w.WriteRTP(h, g.data[e.off:e.off+e.n])
		if i == 0 && err == nil && n == 0 {
			return false // the stream is not connected yet
		}
	}
	b.pending, b.replayed = false, true
	b.replayFrom, b.replayTo = g.entries[0].seq, g.entries[len(g.entries)-1].seq
	return true
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
	i := slices.IndexFunc(t.bindings, func(b *binding) bool { return b.ssrc == ssrc })
	s := &t.history[seq%historySize]
	if i < 0 || !s.valid || s.seq != seq {
		return false
	}
	b := t.bindings[i]
	if b.pending || b.replayed && seq-b.replayFrom <= b.replayTo-b.replayFrom {
		return false // never sent, or sent with other timestamps
	}
	h := &rtp.Header{Version: 2, Marker: s.marker, PayloadType: uint8(b.pt), SequenceNumber: seq, Timestamp: s.ts, SSRC: uint32(ssrc)}
	_, err := b.w.WriteRTP(h, s.buf[:s.n])
	return err == nil
}

// gopCache holds the H264 packets sent since the last keyframe's access
// unit began, in one reused buffer.
type gopCache struct {
	entries []gopEntry
	data    []byte
	auStart int  // index of the first entry of the newest access unit
	auKey   bool // the newest access unit holds an IDR picture
	valid   bool // entries begin with a keyframe's access unit
}

type gopEntry struct {
	off, n int
	seq    uint16
	ts     uint32
	marker bool
}

// add appends a sent packet; an IDR picture restarts the cache at its
// access unit (with the parameter sets sent before it).
func (g *gopCache) add(p *rtp.Packet) {
	if n := len(g.entries); n == 0 || g.entries[n-1].marker || g.entries[n-1].ts != p.Timestamp {
		if !g.valid {
			g.entries, g.data = g.entries[:0], g.data[:0]
		}
		g.auStart, g.auKey = len(g.entries), false
	}
	if !g.auKey && isIDR(p.Payload) {
		g.auKey = true
		g.restartAt(g.auStart)
	}
	if len(g.data)+len(p.Payload) > maxGOPBytes {
		g.entries, g.data, g.valid = g.entries[:0], g.data[:0], false
		return
	}
	g.entries = append(g.entries, gopEntry{off: len(g.data), n: len(p.Payload), seq: p.SequenceNumber, ts: p.Timestamp, marker: p.Marker})
	g.data = append(g.data, p.Payload...)
}

// restartAt drops the entries before i.
func (g *gopCache) restartAt(i int) {
	base := len(g.data)
	if i < len(g.entries) {
		base = g.entries[i].off
	}
	g.data = g.data[:copy(g.data, g.data[base:])]
	g.entries = g.entries[:copy(g.entries, g.entries[i:])]
	for j := range g.entries {
		g.entries[j].off -= base
	}
	g.auStart, g.valid = 0, true
}

// frames counts the cached access units (distinct timestamps in a row).
func (g *gopCache) frames() int {
	n := 0
	for i := range g.entries {
		if i == 0 || g.entries[i].ts != g.entries[i-1].ts {
			n++
		}
	}
	return n
}

// isIDR reports whether an RTP payload (mode 1) carries or begins an IDR
// picture's NAL unit.
func isIDR(payload []byte) bool {
	if len(payload) < 2 {
		return false
	}
	switch typ := payload[0] & 0x1f; typ {
	case 5:
		return true
	case 28: // FU-A: its start
		return payload[1]&0x80 != 0 && payload[1]&0x1f == 5
	case 24: // STAP-A
		for b := payload[1:]; len(b) >= 3; {
			n := int(b[0])<<8 | int(b[1])
			if b[2]&0x1f == 5 {
				return true
			}
			if 2+n > len(b) {
				return false
			}
			b = b[2+n:]
		}
	}
	return false
}
