package recorder

import "github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"

// g711Table maps each G.711 byte to its 16-bit big-endian linear sample.
// It is made with mediacommon's decoder, once per track: decoding a packet
// is then a table lookup per byte into a reused buffer, where the decoder
// itself allocates its output for every packet.
type g711Table [256][2]byte

func newG711Table(mulaw bool) *g711Table {
	var all [256]byte
	for i := range all {
		all[i] = byte(i)
	}
	var lin []byte
	if mulaw {
		var m g711.Mulaw
		m.Unmarshal(all[:])
		lin = m
	} else {
		var a g711.Alaw
		a.Unmarshal(all[:])
		lin = a
	}
	var t g711Table
	for i := range t {
		t[i] = [2]byte{lin[2*i], lin[2*i+1]}
	}
	return &t
}

// decode writes the samples of in into buf (grown when it is short) and
// returns them.
func (t *g711Table) decode(buf, in []byte) []byte {
	if cap(buf) < 2*len(in) {
		buf = make([]byte, 2*len(in))
	}
	out := buf[:2*len(in)]
	for i, b := range in {
		v := &t[b]
		out[2*i], out[2*i+1] = v[0], v[1]
	}
	return out
}

// jpegSize reads the frame size from a JPEG's start-of-frame header: a
// bounded walk of its markers (the frame comes from the camera).
func jpegSize(b []byte) (width, height int, ok bool) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0, 0, false
	}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			return 0, 0, false
		}
		m := b[i+1]
		l := int(b[i+2])<<8 | int(b[i+3])
		switch {
		case m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC: // SOFn
			if l < 7 || i+9 > len(b) {
				return 0, 0, false
			}
			height = int(b[i+5])<<8 | int(b[i+6])
			width = int(b[i+7])<<8 | int(b[i+8])
			return width, height, width > 0 && height > 0
		case m == 0xDA: // start of scan before any frame header
			return 0, 0, false
		}
		if l < 2 {
			return 0, 0, false
		}
		i += 2 + l
	}
	return 0, 0, false
}
