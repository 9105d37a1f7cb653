package recorder

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"
)

// join is an access unit of h264Depay as NAL units.
func (au *h264AU) join() [][]byte {
	var out [][]byte
	pieces := au.pieces
	for _, c := range au.counts {
		var n []byte
		for _, p := range pieces[:c] {
			n = append(n, p...)
		}
		out = append(out, n)
		pieces = pieces[c:]
	}
	return out
}

// randomNALU is a NAL unit of type typ without start codes (no two zero
// bytes in a row, as emulation prevention guarantees).
func randomNALU(r *rand.Rand, typ byte, size int) []byte {
	n := make([]byte, size)
	n[0] = 0x60 | typ
	for i := 1; i < size; i++ {
		n[i] = byte(r.IntN(256))
		if n[i] == 0 && n[i-1] == 0 {
			n[i] = 1
		}
	}
	return n
}

// TestH264DepayMatchesGortsplib: on what gortsplib's encoder sends (single
// NAL units, STAP-A, FU-A), with and without lost packets and markers, the
// recorder's depacketizer gives the access units gortsplib's decoder
// gives, NAL unit for NAL unit; its views hold the parameter sets whole
// and the slice headers.
func TestH264DepayMatchesGortsplib(t *testing.T) {
	for _, tc := range []struct {
		name     string
		loss     float64
		noMarker bool
	}{{"clean", 0, false}, {"loss", 0.03, false}, {"no marker", 0, true}, {"no marker, loss", 0.03, true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			enc := &rtph264.Encoder{PayloadType: 96, PayloadMaxSize: 300, PacketizationMode: 1}
			if err := enc.Init(); err != nil {
				t.Fatal(err)
			}
			ref := &rtph264.Decoder{PacketizationMode: 1}
			if err := ref.Init(); err != nil {
				t.Fatal(err)
			}
			var d h264Depay
			var want, got [][][]byte
			for i := range 300 {
				var au [][]byte
				if i%25 == 0 {
					au = append(au, randomNALU(r, 7, 20+r.IntN(400)), randomNALU(r, 8, 4), randomNALU(r, 5, 100+r.IntN(3000)))
				} else {
					for range 1 + r.IntN(3) {
						au = append(au, randomNALU(r, 1, 2+r.IntN(1200)))
					}
				}
				pkts, err := enc.Encode(au)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range pkts {
					p.Timestamp = uint32(i * 3600)
					if tc.noMarker {
						p.Marker = false
					}
					if r.Float64() < tc.loss {
						continue
					}
					if w, err := ref.Decode(p); err == nil {
						want = append(want, w)
					}
					a, err := d.Decode(p)
					if err != nil {
						continue
					}
					for k, n := range a.join() {
						v := a.views[k]
						typ := n[0] & 0x1f
						if (typ == 7 || typ == 8) && !bytes.Equal(v, n) || !bytes.HasPrefix(n, v) || len(v) < min(len(n), viewHead) {
							t.Fatalf("AU %d NAL unit %d (type %d): view of %d bytes", i, k, typ, len(v))
						}
					}
					got = append(got, a.join())
				}
			}
			// gortsplib splits on a timestamp change only once the new
			// access unit's first NAL unit is complete: the same access
			// units, ours one packet earlier (so at most one more).
			if len(got) < len(want) || len(got) > len(want)+1 {
				t.Fatalf("%d access units, gortsplib %d", len(got), len(want))
			}
			for i := range want {
				if len(got[i]) != len(want[i]) {
					t.Fatalf("AU %d: %d NAL units, want %d", i, len(got[i]), len(want[i]))
				}
				for k := range want[i] {
					if !bytes.Equal(got[i][k], want[i][k]) {
						t.Fatalf("AU %d NAL unit %d differs", i, k)
					}
				}
			}
			aus := len(got)
			if aus < 200 {
				t.Fatalf("only %d access units out", aus)
			}
		})
	}
}

// TestH264DepayStartCode: a NAL unit with a start code inside (a camera
// that sends Annex-B, or several NAL units in one fragment) is reported, so
// the track switches to gortsplib's decoder, which splits them, also when
// the start code straddles two fragments.
func TestH264DepayStartCode(t *testing.T) {
	single := &rtp.Packet{Header: rtp.Header{Marker: true}, Payload: []byte{0x65, 1, 2, 0, 0, 1, 0x41, 5}}
	fuA := []*rtp.Packet{
		{Header: rtp.Header{SequenceNumber: 1}, Payload: []byte{0x7c, 0x85, 1, 2, 0}},
		{Header: rtp.Header{SequenceNumber: 2, Marker: true}, Payload: []byte{0x7c, 0x45, 0, 1, 9}},
	}
	var d h264Depay
	if _, err := d.Decode(single); !errors.Is(err, errAnnexB) {
		t.Errorf("single NAL unit: %v, want errAnnexB", err)
	}
	var d2 h264Depay
	_, err := d2.Decode(fuA[0])
	if !errors.Is(err, errMorePackets) {
		t.Fatalf("first fragment: %v", err)
	}
	if _, err := d2.Decode(fuA[1]); !errors.Is(err, errAnnexB) {
		t.Errorf("straddling fragments: %v, want errAnnexB", err)
	}
}

// TestH264DepayAllocs: after warm-up, depacketizing allocates nothing per
// packet (gortsplib's decoder allocates a joined copy per fragmented NAL
// unit).
func TestH264DepayAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	pkts, err := enc.Encode([][]byte{randomNALU(r, 5, 20000), randomNALU(r, 1, 50)})
	if err != nil {
		t.Fatal(err)
	}
	var d h264Depay
	ts := uint32(0)
	allocs := testing.AllocsPerRun(50, func() {
		ts += 3600
		for _, p := range pkts {
			p.Timestamp = ts
			if _, err := d.Decode(p); err != nil && !errors.Is(err, errMorePackets) {
				t.Fatal(err)
			}
		}
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per access unit of %d packets", allocs, len(pkts))
	}
}
