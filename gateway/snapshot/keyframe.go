package snapshot

import (
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/gateway/stream"
)

// Codec names the elementary stream format given to the decoder (ffmpeg's
// demuxer name).
type Codec string

// Codecs a snapshot can be decoded from.
const (
	CodecH264 Codec = "h264"
	CodecH265 Codec = "hevc"
)

// Keyframe is one keyframe access unit in Annex-B form, with its
// parameter sets in front, ready for a decoder that knows nothing else of
// the stream.
type Keyframe struct {
	Codec  Codec
	AnnexB []byte
}

// complete reports whether pkts hold a whole access unit: RTP marks the
// last packet of an access unit with the marker bit.
func complete(pkts []*stream.Packet) bool {
	return len(pkts) > 0 && pkts[len(pkts)-1].Header()[1]&0x80 != 0
}

// formatOf finds the format of a variant's media by payload type.
func formatOf(v *stream.Variant, media int, pt uint8) format.Format {
	if media < 0 || media >= len(v.Desc.Medias) {
		return nil
	}
	for _, f := range v.Desc.Medias[media].Formats {
		if f.PayloadType() == pt {
			return f
		}
	}
	return nil
}

// keyframeOf depacketizes one access unit's RTP packets (the output of
// stream.Variant.Keyframe) into an Annex-B keyframe, adding the parameter
// sets of the SDP when the access unit does not carry them in band.
func keyframeOf(v *stream.Variant, pkts []*stream.Packet) (Keyframe, error) {
	if len(pkts) == 0 {
		return Keyframe{}, ErrNoKeyframe
	}
	f := formatOf(v, pkts[0].Media, pkts[0].PayloadType())
	switch f := f.(type) {
	case *format.H264:
		dec, err := f.CreateDecoder()
		if err != nil {
			return Keyframe{}, fmt.Errorf("snapshot: h264 depacketizer: %w", err)
		}
		au, err := decodeAU(dec.Decode, pkts)
		if err != nil {
			return Keyframe{}, err
		}
		sps, pps := f.SafeParams()
		return annexB(CodecH264, withParams(au, h264Type, [][]byte{sps, pps}))
	case *format.H265:
		dec, err := f.CreateDecoder()
		if err != nil {
			return Keyframe{}, fmt.Errorf("snapshot: h265 depacketizer: %w", err)
		}
		au, err := decodeAU(dec.Decode, pkts)
		if err != nil {
			return Keyframe{}, err
		}
		vps, sps, pps := f.SafeParams()
		return annexB(CodecH265, withParams(au, h265Type, [][]byte{vps, sps, pps}))
	case nil:
		return Keyframe{}, fmt.Errorf("%w: the keyframe's payload type is not in the stream description", ErrNoKeyframe)
	default:
		return Keyframe{}, fmt.Errorf("%w: %s", ErrUnsupportedCodec, f.Codec())
	}
}

// decodeAU feeds the packets to an RTP depacketizer and returns the access
// unit it completes.
func decodeAU(decode func(*rtp.Packet) ([][]byte, error), pkts []*stream.Packet) ([][]byte, error) {
	var pkt rtp.Packet
	for _, p := range pkts {
		if err := pkt.Unmarshal(p.Buf); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoKeyframe, err)
		}
		au, err := decode(&pkt)
		switch {
		case err == nil:
			return au, nil
		case isMorePackets(err):
		default:
			return nil, fmt.Errorf("%w: %w", ErrNoKeyframe, err)
		}
	}
	return nil, fmt.Errorf("%w: the access unit has no last packet", ErrNoKeyframe)
}

func isMorePackets(err error) bool {
	return errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrMorePacketsNeeded)
}

func h264Type(n []byte) int { return int(h264.NALUType(n[0] & 0x1f)) }
func h265Type(n []byte) int { return int(h265.NALUType((n[0] >> 1) & 0x3f)) }

// withParams puts the parameter sets params (in decoding order, e.g. SPS,
// PPS) in front of au unless au already carries each of their types.
func withParams(au [][]byte, typeOf func([]byte) int, params [][]byte) [][]byte {
	have := map[int]bool{}
	for _, n := range au {
		if len(n) > 0 {
			have[typeOf(n)] = true
		}
	}
	out := make([][]byte, 0, len(params)+len(au))
	for _, p := range params {
		if len(p) > 0 && !have[typeOf(p)] {
			out = append(out, p)
		}
	}
	return append(out, au...)
}

func annexB(c Codec, au [][]byte) (Keyframe, error) {
	b, err := h264.AnnexB(au).Marshal()
	if err != nil {
		return Keyframe{}, fmt.Errorf("%w: %w", ErrNoKeyframe, err)
	}
	return Keyframe{Codec: c, AnnexB: b}, nil
}
