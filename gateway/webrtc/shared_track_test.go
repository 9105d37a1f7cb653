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
