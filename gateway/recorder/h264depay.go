package recorder

import (
	"bytes"
	"errors"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// errMorePackets: the access unit is not complete yet (or the packet was
// skipped); not a failure.
var errMorePackets = errors.New("more packets needed")

// errAnnexB: a NAL unit carries a start code (a camera that wraps NAL
// units in Annex-B, or puts several in one fragment): the track goes back
// to gortsplib's depacketizer, which splits them.
var errAnnexB = errors.New("start code inside a NAL unit")

// h264Depay is the recorder's RTP/H264 depacketizer (RFC 6184, single NAL
// unit, STAP-A and FU-A packets): gortsplib's rtph264.Decoder with the
// same access unit rules (split on the marker bit or a timestamp change),
// but a fragmented NAL unit is not joined: its fragments stay in their
// packets (which the track holds until the access unit is out) and the
// archive writer copies them once, behind the NAL unit's length. At 100
// recorded cameras the join (an allocation and a copy per video NAL unit)
// and its two scans for start codes were ~9 % of camgate's CPU.
//
// An access unit comes out twice: pieces/counts (what is written: NAL
// unit k is the next counts[k] pieces) and views, one per NAL unit, for
// what reads NAL units (parameter sets, random access, the DTS
// extractor): the whole NAL unit when it came in one piece or is a
// parameter set, else its first viewHead bytes (the slice header the DTS
// extractor reads). Both are valid until the next Decode.
type h264Depay struct {
	pieces [][]byte
	counts []int
	views  [][]byte
	size   int // bytes of the access unit's NAL units
	ts     uint32
	open   bool // the access unit has NAL units

	// the FU-A in progress: its pieces start at pieces[fuStart]
	fu      bool
	fuStart int
	fuNext  uint16
	fuSize  int
	fuHead  []byte // header byte and the start of the payload

	// arena holds FU-A header bytes and heads (a full arena is replaced,
	// not grown: earlier slices stay valid); outArena is the returned
	// access unit's. They swap with each access unit.
	arena, outArena []byte
	// out is the access unit last returned; its slices are reused.
	out h264AU
}

// h264AU is a depacketized access unit (see h264Depay).
type h264AU struct {
	pieces [][]byte
	counts []int
	views  [][]byte
}

// viewHead is how much of a fragmented slice's NAL unit its view holds:
// more than the 23 bytes mediacommon's DTS extractor reads of a slice header.
const viewHead = 32

const arenaSize = 4096

// alloc returns n bytes of the arena.
func (d *h264Depay) alloc(n int) []byte {
	if len(d.arena)+n > cap(d.arena) {
		d.arena = make([]byte, 0, max(arenaSize, n))
	}
	d.arena = d.arena[:len(d.arena)+n]
	return d.arena[len(d.arena)-n : len(d.arena) : len(d.arena)]
}

// Decode takes one packet; it returns an access unit once one is complete.
// pkt's payload must stay unchanged until the access unit that holds it
// is out (the recorder holds the packets).
func (d *h264Depay) Decode(pkt *rtp.Packet) (*h264AU, error) {
	if d.open && pkt.Timestamp != d.ts {
		// A camera that sets no marker: the timestamp ends the access unit
		// (a fragmented NAL unit left unfinished is lost).
		d.dropFU()
		if len(d.counts) > 0 {
			d.finish()
			if err := d.add(pkt); errors.Is(err, errAnnexB) {
				return nil, err
			}
			return &d.out, nil
		}
		d.reset()
	}
	if err := d.add(pkt); err != nil {
		return nil, err
	}
	if !pkt.Marker || d.fu || len(d.counts) == 0 {
		return nil, errMorePackets
	}
	d.finish()
	return &d.out, nil
}

// finish moves the gathered access unit to out and starts the next one
// (in out's previous slices and arena, which nothing uses any more).
func (d *h264Depay) finish() {
	clear(d.out.pieces)
	clear(d.out.views)
	d.out.pieces, d.pieces = d.pieces, d.out.pieces[:0]
	d.out.counts, d.counts = d.counts, d.out.counts[:0]
	d.out.views, d.views = d.views, d.out.views[:0]
	d.arena, d.outArena = d.outArena[:0], d.arena
	d.open, d.size, d.fu, d.fuHead = false, 0, false, nil
}

// add appends the packet's NAL units to the access unit being gathered.
func (d *h264Depay) add(pkt *rtp.Packet) error {
	p := pkt.Payload
	if len(p) < 1 {
		d.dropFU()
		return errors.New("payload is too short")
	}
	switch h264.NALUType(p[0] & 0x1f) {
	case h264.NALUTypeFUA:
		return d.addFU(pkt)
	case h264.NALUTypeSTAPA:
		d.dropFU()
		p = p[1:]
		n := 0
		for len(p) > 0 {
			if len(p) < 2 {
				return errors.New("invalid STAP-A packet (invalid size)")
			}
			size := int(p[0])<<8 | int(p[1])
			p = p[2:]
			if size == 0 {
				if isAllZero(p) {
					break
				}
				return errors.New("invalid STAP-A packet (invalid size)")
			}
			if size > len(p) {
				return errors.New("invalid STAP-A packet (invalid size)")
			}
			if err := d.addNALU(p[:size], pkt.Timestamp); err != nil {
				return err
			}
			p = p[size:]
			n++
		}
		if n == 0 {
			return errors.New("STAP-A packet doesn't contain any NALU")
		}
		return nil
	case h264.NALUTypeSTAPB, h264.NALUTypeMTAP16, h264.NALUTypeMTAP24, h264.NALUTypeFUB:
		d.dropFU()
		return errors.New("packet type not supported")
	}
	d.dropFU()
	return d.addNALU(p, pkt.Timestamp)
}

func isAllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// hasStartCode reports a 00 00 01 in b (00 00 00 01 contains it).
func hasStartCode(b []byte) bool { return bytes.Index(b, startCode) >= 0 }

var startCode = []byte{0, 0, 1}

// grow checks the access unit's limits before n more bytes in one more NAL unit.
func (d *h264Depay) grow(n int) error {
	if len(d.counts)+1 > h264.MaxNALUsPerAccessUnit || d.size+n > h264.MaxAccessUnitSize {
		d.reset()
		return errors.New("access unit too big")
	}
	return nil
}

// addNALU appends a NAL unit that came whole.
func (d *h264Depay) addNALU(n []byte, ts uint32) error {
	if hasStartCode(n) {
		d.reset()
		return errAnnexB
	}
	if len(n) == 0 {
		return nil
	}
	if err := d.grow(len(n)); err != nil {
		return err
	}
	d.pieces = append(d.pieces, n)
	d.counts = append(d.counts, 1)
	d.views = append(d.views, n)
	d.size += len(n)
	d.ts, d.open = ts, true
	return nil
}

func (d *h264Depay) addFU(pkt *rtp.Packet) error {
	p := pkt.Payload
	if len(p) < 2 {
		return errors.New("invalid FU-A packet (invalid size)")
	}
	start, end := p[1]>>7 == 1, (p[1]>>6)&1 == 1
	frag := p[2:]
	if start {
		d.dropFU()
		if err := d.grow(1 + len(frag)); err != nil {
			return err
		}
		// The head: the NAL unit's header byte (its first piece), then the
		// start of the payload.
		head := d.alloc(1 + min(len(frag), viewHead-1))
		head[0] = p[0]&0x60 | p[1]&0x1f
		copy(head[1:], frag)
		d.fu, d.fuStart, d.fuNext, d.fuSize, d.fuHead = true, len(d.pieces), pkt.SequenceNumber+1, 1, head
		d.pieces = append(d.pieces, head[:1:1])
		d.ts, d.open = pkt.Timestamp, true
	} else {
		if !d.fu {
			return errMorePackets // joined mid-NALU, or after a loss: wait for a start
		}
		if pkt.SequenceNumber != d.fuNext {
			d.dropFU()
			return errMorePackets // a fragment is missing: the NAL unit is lost
		}
		d.fuNext++
	}
	// A start code across the previous fragment's end and this one's start
	// is caught by the join below; within a fragment, here.
	if hasStartCode(frag) || d.straddles(frag) {
		d.reset()
		return errAnnexB
	}
	if d.size+d.fuSize+len(frag) > h264.MaxAccessUnitSize {
		d.reset()
		return errors.New("access unit too big")
	}
	if len(frag) > 0 {
		d.pieces = append(d.pieces, frag)
		d.fuSize += len(frag)
	}
	if !end {
		return errMorePackets
	}
	return d.endFU()
}

// straddles reports a start code split between the last piece of the FU
// and frag.
func (d *h264Depay) straddles(frag []byte) bool {
	if len(d.pieces) <= d.fuStart+1 || len(frag) == 0 {
		return false
	}
	last := d.pieces[len(d.pieces)-1]
	var b [4]byte
	k := copy(b[:], last[max(0, len(last)-2):])
	k += copy(b[k:], frag[:min(2, len(frag))])
	return hasStartCode(b[:k])
}

// endFU closes the fragmented NAL unit. Parameter sets (a few bytes, and
// kept by the track) are joined; a slice's view is its head.
func (d *h264Depay) endFU() error {
	pieces := d.pieces[d.fuStart:]
	view := d.fuHead
	switch h264.NALUType(pieces[0][0] & 0x1f) {
	case h264.NALUTypeSPS, h264.NALUTypePPS:
		view = make([]byte, 0, d.fuSize)
		for _, pc := range pieces {
			view = append(view, pc...)
		}
	}
	d.counts = append(d.counts, len(pieces))
	d.views = append(d.views, view)
	d.size += d.fuSize
	d.fu, d.fuHead = false, nil
	return nil
}

// dropFU forgets an unfinished fragmented NAL unit.
func (d *h264Depay) dropFU() {
	if d.fu {
		clear(d.pieces[d.fuStart:])
		d.pieces = d.pieces[:d.fuStart]
		d.fu, d.fuHead = false, nil
	}
}

// reset drops the access unit being gathered.
func (d *h264Depay) reset() {
	clear(d.pieces)
	clear(d.views)
	d.pieces, d.counts, d.views = d.pieces[:0], d.counts[:0], d.views[:0]
	d.open, d.size, d.fu, d.fuHead = false, 0, false, nil
}
