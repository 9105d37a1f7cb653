package webrtc

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/camgate/camgate/internal/httpjson"
)

// Errors of the WHEP exchange; each wraps the generic kind that the HTTP
// front's one mapping (httpapi.StatusOf) answers.
var (
	// ErrBadOffer: the SDP offer is malformed or cannot be answered (400).
	ErrBadOffer = fmt.Errorf("bad SDP offer: %w", httpjson.ErrBadRequest)
	// ErrBadCandidate: a trickle ICE fragment is malformed (400).
	ErrBadCandidate = fmt.Errorf("bad trickle ICE fragment: %w", httpjson.ErrBadRequest)
	// ErrNotPlayable: the camera's video is not H264 (400: no WebRTC viewer
	// can play it without transcoding, which camgate does not do).
	ErrNotPlayable = fmt.Errorf("camera video is not playable over WebRTC: %w", httpjson.ErrBadRequest)
	// ErrCodecNotOffered: the camera's video codec is not among those the
	// offer can receive, e.g. an H265 camera and an offer with only H264
	// (415: the viewer's media types cannot carry it).
	ErrCodecNotOffered = fmt.Errorf("the offer cannot receive the camera's video codec: %w", httpjson.ErrUnsupportedMediaType)
	// ErrBFrames: the camera's video has B-frames (frames out of
	// presentation order). Browsers decode such WebRTC video at a frame or
	// so per second, so it is refused, as mediamtx does (400, like
	// ErrNotPlayable: HLS plays it).
	ErrBFrames = fmt.Errorf("%w: the camera's video has B-frames, which WebRTC viewers cannot play smoothly (watch it over HLS, or turn B-frames off on the camera)", ErrNotPlayable)
	// ErrTooLarge: the request body is over the limit (413).
	ErrTooLarge = fmt.Errorf("whep: %w", httpjson.ErrTooLarge)
)

// Limits on what a viewer may send: a browser's offer has a handful of
// media sections and a few dozen candidates.
const (
	maxOfferMedias = 16
	maxCandidates  = 64
)

// offerInfo is what the server needs to know about an offer before pion
// sees it.
type offerInfo struct {
	// audio: the offer has a media section that can receive audio.
	audio bool
	// h264, h265: a video section of the offer can receive the codec.
	h264, h265 bool
	// ufrag is the offerer's ICE username fragment (trickle ICE checks it).
	ufrag string
}

// checkOffer rejects offers that cannot become a viewer session: not SDP,
// too many sections, or no section that can receive H264 or H265 video.
func checkOffer(offer string) (offerInfo, error) {
	var info offerInfo
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return info, fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	if len(sd.MediaDescriptions) > maxOfferMedias {
		return info, fmt.Errorf("%w: %d media sections (at most %d)", ErrBadOffer, len(sd.MediaDescriptions), maxOfferMedias)
	}
	info.ufrag, _ = sd.Attribute("ice-ufrag")
	for _, m := range sd.MediaDescriptions {
		if u, ok := m.Attribute("ice-ufrag"); ok && info.ufrag == "" {
			info.ufrag = u
		}
		if !canReceive(m) {
			continue
		}
		switch m.MediaName.Media {
		case "video":
			info.h264 = info.h264 || hasRTPMap(m, "h264/90000")
			info.h265 = info.h265 || hasRTPMap(m, "h265/90000")
		case "audio":
			info.audio = true
		}
	}
	if !info.h264 && !info.h265 {
		return info, fmt.Errorf("%w: no media section receives H264 or H265 video", ErrBadOffer)
	}
	return info, nil
}

// accepts reports whether the offer can receive video of mime.
func (info offerInfo) accepts(mime string) bool {
	switch mime {
	case webrtc.MimeTypeH264:
		return info.h264
	case webrtc.MimeTypeH265:
		return info.h265
	}
	return false
}

// offered names the offer's video codecs, for error messages.
func (info offerInfo) offered() string {
	switch {
	case info.h264 && info.h265:
		return "H264 and H265"
	case info.h265:
		return "only H265"
	}
	return "only H264"
}

// canReceive reports whether the offerer accepts media on m.
func canReceive(m *sdp.MediaDescription) bool {
	if m.MediaName.Port.Value == 0 { // rejected/disabled section
		return false
	}
	for _, a := range m.Attributes {
		if a.Key == "sendonly" || a.Key == "inactive" {
			return false
		}
	}
	return true
}

func hasRTPMap(m *sdp.MediaDescription, codec string) bool {
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		// "96 H264/90000"
		if _, enc, ok := strings.Cut(a.Value, " "); ok && strings.EqualFold(strings.TrimSpace(enc), codec) {
			return true
		}
	}
	return false
}

// trickle is a parsed application/trickle-ice-sdpfrag body (RFC 8840).
type trickle struct {
	ufrag      string
	candidates []webrtc.ICECandidateInit
}

// parseTrickle reads the candidates of a trickle ICE fragment, each bound to
// the m-section (mid) it follows.
func parseTrickle(frag string) (trickle, error) {
	var t trickle
	var mid *string
	for line := range strings.Lines(frag) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			t.ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=mid:"):
			m := strings.TrimPrefix(line, "a=mid:")
			mid = &m
		case strings.HasPrefix(line, "m="):
			mid = nil
		case strings.HasPrefix(line, "a=candidate:"):
			if len(t.candidates) == maxCandidates {
				return t, fmt.Errorf("%w: more than %d candidates", ErrBadCandidate, maxCandidates)
			}
			c := webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a="), SDPMid: mid}
			if mid == nil {
				zero := uint16(0)
				c.SDPMLineIndex = &zero
			}
			t.candidates = append(t.candidates, c)
		}
	}
	return t, nil
}
