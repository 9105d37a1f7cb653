package webrtc

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/camgate/camgate/gateway/stream"
)

// recorder keeps copies of what a mediaOut writes.
type recorder struct{ pkts []rtp.Packet }

func (r *recorder) WriteRTP(p *rtp.Packet) error {
	c := *p
	c.Payload = append([]byte(nil), p.Payload...)
	r.pkts = append(r.pkts, c)
	return nil
}

func streamPacket(seq uint16, ts uint32, marker bool, payload []byte) *stream.Packet {
	b := make([]byte, 12, 12+len(payload))
	b[0], b[1] = 0x80, 96
	if marker {
		b[1] |= 0x80
	}
	b[2], b[3] = byte(seq>>8), byte(seq)
	b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
	return &stream.Packet{Buf: append(b, payload...)}
}

func nalu(typ byte, size int) []byte {
	n := make([]byte, size)
	n[0] = 0x60 | typ
	for i := 1; i < size; i++ {
		n[i] = byte(i * 7)
	}
	return n
}

func fuA(n []byte, start, end bool) []byte {
	h := n[0]&0x1f | map[bool]byte{true: 0x80}[start] | map[bool]byte{true: 0x40}[end]
	return append([]byte{n[0]&0xe0 | 28, h}, n[1:]...)
}

func stapA(ns ...[]byte) []byte {
	out := []byte{0x78}
	for _, n := range ns {
		out = append(out, byte(len(n)>>8), byte(len(n)))
		out = append(out, n...)
	}
	return out
}

// annexB depacketizes what was written, as a receiver would.
func annexB(t *testing.T, pkts []rtp.Packet) []byte {
	t.Helper()
	var d codecs.H264Packet
	var out []byte
	for _, p := range pkts {
		b, err := d.Unmarshal(p.Payload)
		if err != nil {
			t.Fatalf("depacketize %x...: %v", p.Payload[:2], err)
		}
		out = append(out, b...)
	}
	return out
}

func TestMediaOutRefragmentsH264(t *testing.T) {
	big, small := nalu(5, 3000), nalu(1, 40)
	sc := []byte{0, 0, 0, 1}
	join := func(ns ...[]byte) []byte {
		var b []byte
		for _, n := range ns {
			b = append(append(b, sc...), n...)
		}
		return b
	}
	cases := []struct {
		name     string
		payloads [][]byte // one access unit, in packets; marker on the last
		want     []byte
	}{
		{"small single NAL unit passes", [][]byte{small}, join(small)},
		{"large single NAL unit", [][]byte{big}, join(big)},
		{"large FU-A fragments", [][]byte{fuA(big[:1800], true, false), append([]byte{big[0]&0xe0 | 28, big[0] & 0x1f}, big[1800:]...)}, nil},
		{"large STAP-A", [][]byte{stapA(small, nalu(5, 1500))}, join(small, nalu(5, 1500))},
	}
	// The FU-A case ends the unit in its second packet.
	cases[2].payloads[1][1] |= 0x40
	cases[2].want = join(big)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			o := &mediaOut{w: rec, clockRate: 90000, h264: true}
			now := time.Now()
			seq := uint16(65530) // across the wrap
			for i, p := range c.payloads {
				o.write(streamPacket(seq, 9000, i == len(c.payloads)-1, p), now)
				seq++
			}
			o.write(streamPacket(seq, 12600, true, small), now) // the next unit
			got := rec.pkts[:len(rec.pkts)-1]
			if b := annexB(t, got); !bytes.Equal(b, c.want) {
				t.Fatalf("receiver reassembles %d bytes, want %d", len(b), len(c.want))
			}
			for i, p := range rec.pkts {
				if len(p.Payload) > maxPayload {
					t.Fatalf("packet %d: %d bytes", i, len(p.Payload))
				}
				if p.Marker != (i == len(got)-1 || i == len(got)) {
					t.Fatalf("packet %d: marker %v", i, p.Marker)
				}
				if i > 0 && p.SequenceNumber != rec.pkts[i-1].SequenceNumber+1 {
					t.Fatalf("sequence %d after %d", p.SequenceNumber, rec.pkts[i-1].SequenceNumber)
				}
			}
			if rec.pkts[0].SequenceNumber != 65530 {
				t.Fatalf("first sequence number %d: the offset should start at 0", rec.pkts[0].SequenceNumber)
			}
		})
	}
}

func TestMediaOutKeepsGapsAndRebases(t *testing.T) {
	rec := &recorder{}
	o := &mediaOut{w: rec, clockRate: 90000, h264: true}
	now := time.Now()
	o.write(streamPacket(100, 1000, true, nalu(5, 3000)), now) // 3 packets
	o.write(streamPacket(105, 4600, true, nalu(1, 10)), now)   // 4 lost upstream
	if got := rec.pkts[3].SequenceNumber - rec.pkts[2].SequenceNumber; got != 5 {
		t.Fatalf("upstream gap of 5 became %d", got)
	}
	// A new upstream stream starts from other numbers: viewers see no jump.
	o.rebase = true
	o.write(streamPacket(7, 555, true, nalu(5, 10)), now.Add(time.Second))
	last, prev := rec.pkts[4], rec.pkts[3]
	if last.SequenceNumber != prev.SequenceNumber+1 || last.Timestamp != prev.Timestamp+90000 {
		t.Fatalf("after rebase seq %d ts %d, previous seq %d ts %d", last.SequenceNumber, last.Timestamp, prev.SequenceNumber, prev.Timestamp)
	}
}

// fragments cuts a NAL unit into upstream FU-As of size bytes of data.
func fragments(n []byte, size int) [][]byte {
	var out [][]byte
	data := n[1:]
	for first := true; len(data) > 0; first = false {
		k := min(size, len(data))
		fu := append([]byte{n[0]&0xe0 | 28, n[0] & 0x1f}, data[:k]...)
		if first {
			fu[1] |= 0x80
		}
		if k == len(data) {
			fu[1] |= 0x40
		}
		out = append(out, fu)
		data = data[k:]
	}
	return out
}

func TestMediaOutFillsPacketsAcrossUpstreamFragments(t *testing.T) {
	for _, size := range []int{1398, fuChunk, 700, 1186 * 2} {
		rec := &recorder{}
		o := &mediaOut{w: rec, clockRate: 90000, h264: true}
		idr := nalu(5, 10000)
		frags := fragments(idr, size)
		for i, f := range frags {
			o.write(streamPacket(uint16(i), 9000, i == len(frags)-1, f), time.Now())
		}
		if want := (len(idr) - 1 + fuChunk - 1) / fuChunk; len(rec.pkts) != want {
			t.Fatalf("upstream fragments of %d bytes: %d packets for %d bytes of NAL unit, want %d", size, len(rec.pkts), len(idr), want)
		}
		if b := annexB(t, rec.pkts); !bytes.Equal(b, append([]byte{0, 0, 0, 1}, idr...)) {
			t.Fatalf("upstream fragments of %d bytes: receiver reassembles %d bytes, want %d", size, len(b), len(idr)+4)
		}
		for i, p := range rec.pkts {
			if len(p.Payload) > maxPayload || p.Marker != (i == len(rec.pkts)-1) || p.SequenceNumber != uint16(i) {
				t.Fatalf("packet %d: %d bytes, marker %v, seq %d", i, len(p.Payload), p.Marker, p.SequenceNumber)
			}
		}
	}
}

func TestMediaOutDropsAUnitWithALostFragment(t *testing.T) {
	rec := &recorder{}
	o := &mediaOut{w: rec, clockRate: 90000, h264: true}
	frags := fragments(nalu(5, 6000), 1398) // 5 fragments
	now := time.Now()
	for i, f := range frags {
		if i == 2 {
			continue // lost upstream
		}
		o.write(streamPacket(uint16(10+i), 9000, i == len(frags)-1, f), now)
	}
	before := len(rec.pkts)
	next := nalu(1, 500)
	o.write(streamPacket(15, 12600, true, next), now)
	for _, p := range rec.pkts[:before] {
		if p.Payload[1]&0x40 != 0 {
			t.Fatal("the broken unit was sent with its end: a receiver would decode a corrupt NAL unit")
		}
	}
	last := rec.pkts[len(rec.pkts)-1]
	if !bytes.Equal(last.Payload, next) || last.SequenceNumber == rec.pkts[before-1].SequenceNumber+1 {
		t.Fatalf("the next unit: seq %d after %d (the loss must stay visible as a gap)", last.SequenceNumber, rec.pkts[before-1].SequenceNumber)
	}
}
