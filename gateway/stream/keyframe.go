package stream

// codecKind tells how to find keyframes in a media's RTP payloads.
type codecKind uint8

const (
	codecOther codecKind = iota
	codecH264
	codecH265
)

// isKeyPayload reports whether an RTP payload carries (the start of) a
// parameter set or an IRAP picture, i.e. a point where a decoder can start.
func isKeyPayload(c codecKind, p []byte) bool {
	switch c {
	case codecH264:
		return h264Key(p)
	case codecH265:
		return h265Key(p)
	}
	return false
}

func h264KeyNALU(t byte) bool { return t == 5 || t == 7 }

func h264Key(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case 24: // STAP-A: 16-bit size, NALU, ...
		for i := 1; i+2 < len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			if i+2 >= len(p) || n == 0 {
				return false
			}
			if h264KeyNALU(p[i+2] & 0x1f) {
				return true
			}
			i += 2 + n
		}
		return false
	case 28: // FU-A: only the start fragment counts
		return len(p) >= 2 && p[1]&0x80 != 0 && h264KeyNALU(p[1]&0x1f)
	default:
		return h264KeyNALU(t)
	}
}

func h265KeyNALU(t byte) bool { return (t >= 16 && t <= 21) || (t >= 32 && t <= 34) }

func h265Key(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch t := (p[0] >> 1) & 0x3f; t {
	case 48: // aggregation packet
		for i := 2; i+2 < len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			if n == 0 {
				return false
			}
			if h265KeyNALU((p[i+2] >> 1) & 0x3f) {
				return true
			}
			i += 2 + n
		}
		return false
	case 49: // fragmentation unit
		return len(p) >= 3 && p[2]&0x80 != 0 && h265KeyNALU(p[2]&0x3f)
	default:
		return h265KeyNALU(t)
	}
}
