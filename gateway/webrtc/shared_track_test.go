package webrtc

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// fakeBinding is one peer's side of a track binding: it records what pion
// would encrypt and send to that peer.
type fakeBinding struct {
	ssrc webrtc.SSRC
	pt   webrtc.PayloadType
	got  []rtp.Packet
	// notReady writes are dropped with n == 0, as pion's stream does
	// between Bind and the start of its interceptor chain.
	notReady int
}

func (f *fakeBinding) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{{RTPCodecCapability: h264Codec, PayloadType: f.pt}}
}
func (f *fakeBinding) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (f *fakeBinding) SSRC() webrtc.SSRC                                      { return f.ssrc }
func (f *fakeBinding) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (f *fakeBinding) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (f *fakeBinding) WriteStream() webrtc.TrackLocalWriter                   { return f }
func (f *fakeBinding) ID() string                                             { return fmt.Sprint("peer", f.ssrc) }
func (f *fakeBinding) RTCPReader() interceptor.RTCPReader                     { return nil }
func (f *fakeBinding) Write(b []byte) (int, error)                            { return len(b), nil }
func (f *fakeBinding) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if f.notReady > 0 {
		f.notReady--
		return 0, nil
	}
	f.got = append(f.got, rtp.Packet{Header: *h, Payload: append([]byte(nil), payload...)})
	return len(payload), nil
}

func TestSharedTrackAnswersNACKPerPeer(t *testing.T) {
	tr, err := newSharedTrack(h264Codec, "video", "camgate", true)
	if err != nil {
		t.Fatal(err)
	}
	a, b := &fakeBinding{ssrc: 1111, pt: 102}, &fakeBinding{ssrc: 2222, pt: 106}
	for _, f := range []*fakeBinding{a, b} {
		if _, err := tr.Bind(f); err != nil {
			t.Fatal(err)
		}
	}
	for seq := uint16(65530); seq != 10; seq++ { // across the wrap
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: seq%2 == 0}, Payload: []byte{0x41, byte(seq)}}
		if err := tr.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.got) != 16 || len(b.got) != 16 || a.got[0].SSRC != 1111 || b.got[0].PayloadType != 106 {
		t.Fatalf("fan-out: a got %d, b got %d", len(a.got), len(b.got))
	}
	// Peer a lost 65534 and 2 (and asks for 500, never sent).
	nack, err := (&rtcp.TransportLayerNack{MediaSSRC: 1111, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{65534, 2, 500})}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rr, _ := (&rtcp.ReceiverReport{SSRC: 9}).Marshal()
	if n := tr.handleRTCP(append(rr, nack...)); n != 2 {
		t.Fatalf("resent %d packets, want 2", n)
	}
	if len(b.got) != 16 {
		t.Fatal("the other peer got a retransmission")
	}
	for i, want := range []uint16{65534, 2} {
		got := a.got[16+i]
		if got.SequenceNumber != want || got.SSRC != 1111 || got.PayloadType != 102 ||
			got.Timestamp != uint32(want)*3000 || got.Marker != (want%2 == 0) || !bytes.Equal(got.Payload, []byte{0x41, byte(want)}) {
			t.Fatalf("retransmission %d: %+v", i, got)
		}
	}
	// An unbound peer's NACK is ignored.
	if err := tr.Unbind(a); err != nil {
		t.Fatal(err)
	}
	if n := tr.handleRTCP(nack); n != 0 {
		t.Fatalf("resent %d packets to an unbound peer", n)
	}
}

func TestSharedTrackStartsANewPeerWithTheGOP(t *testing.T) {
	tr, err := newSharedTrack(h264Codec, "video", "camgate", true)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint16(65500)
	write := func(ts uint32, marker bool, payload ...byte) {
		t.Helper()
		if err := tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: marker}, Payload: payload}); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	// frame writes one access unit; an IDR one is SPS, PPS and a two-packet FU-A.
	frame := func(ts uint32, idr bool) {
		if idr {
			write(ts, false, 0x67, 1)
			write(ts, false, 0x68, 2)
			write(ts, false, 0x7c, 0x85, 3)
			write(ts, true, 0x7c, 0x45, 4)
			return
		}
		write(ts, true, 0x41, byte(ts/3600))
	}
	old := &fakeBinding{ssrc: 1, pt: 102}
	if _, err := tr.Bind(old); err != nil {
		t.Fatal(err)
	}
	frame(0, false) // before any keyframe: nothing to replay
	frame(3600, true)
	frame(7200, false)
	frame(10800, true) // the cache restarts here
	frame(14400, false)
	frame(18000, false)
	if len(old.got) != 12 {
		t.Fatalf("the first peer got %d packets, want all 12 live", len(old.got))
	}

	late := &fakeBinding{ssrc: 2, pt: 106, notReady: 1}
	if _, err := tr.Bind(late); err != nil {
		t.Fatal(err)
	}
	frame(21600, false) // late's stream is not connected yet: dropped, cached
	frame(25200, false) // now the replay: 4 + 4 packets, the last one live
	if len(late.got) != 8 {
		t.Fatalf("the new peer got %d packets, want the GOP since the last IDR (8)", len(late.got))
	}
	if p := late.got[0]; p.Payload[0] != 0x67 || p.SSRC != 2 || p.PayloadType != 106 {
		t.Fatalf("replay starts with %x (ssrc %d pt %d), want the SPS before the last IDR on the new peer's stream", p.Payload[0], p.SSRC, p.PayloadType)
	}
	for i, p := range late.got {
		if i > 0 && p.SequenceNumber != late.got[i-1].SequenceNumber+1 {
			t.Fatalf("replay packet %d: seq %d after %d", i, p.SequenceNumber, late.got[i-1].SequenceNumber)
		}
		if i > 0 && p.Timestamp < late.got[i-1].Timestamp {
			t.Fatalf("replay packet %d: timestamp goes back", i)
		}
	}
	// Five frames squeezed to the live edge: 25196..25200.
	if first, last := late.got[0].Timestamp, late.got[7].Timestamp; last != 25200 || first != 25196 || late.got[3].Timestamp != 25196 {
		t.Fatalf("replayed timestamps %d..%d, want 25196..25200", first, last)
	}
	frame(28800, false)
	if p := late.got[8]; len(late.got) != 9 || p.Timestamp != 28800 || p.SequenceNumber != late.got[7].SequenceNumber+1 {
		t.Fatalf("live after the replay: %d packets, last %+v", len(late.got), p.Header)
	}
	if len(old.got) != 15 {
		t.Fatalf("the first peer got %d packets, want 15 (no replay for it)", len(old.got))
	}
	// A NACK for a replayed packet is not answered with the live timestamps;
	// one for a live packet is.
	replayed, live := late.got[2].SequenceNumber, late.got[8].SequenceNumber
	nack, _ := (&rtcp.TransportLayerNack{MediaSSRC: 2, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{replayed, live})}).Marshal()
	if n := tr.handleRTCP(nack); n != 1 {
		t.Fatalf("resent %d packets, want 1 (the live one)", n)
	}
}
