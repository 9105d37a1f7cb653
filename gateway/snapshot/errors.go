package snapshot

import (
	"fmt"

	"github.com/camgate/camgate/internal/httpjson"
)

// Errors of a snapshot. Each wraps the httpjson kind the HTTP edge's one
// mapping answers: a snapshot that cannot be made now is 503 with a message
// that says why; a camera whose codec has no decoder is 415 (never better
// by retrying).
var (
	// ErrNoDecoder: ffmpeg is not installed where the gateway runs.
	ErrNoDecoder = fmt.Errorf("%w: snapshots are decoded by ffmpeg, which is not installed on this gateway (install ffmpeg and put it on PATH)", httpjson.ErrUnavailable)
	// ErrNoKeyframe: the camera sent no decodable keyframe in time.
	ErrNoKeyframe = fmt.Errorf("%w: no keyframe from the camera yet; try again shortly", httpjson.ErrUnavailable)
	// ErrUpstream: the camera's stream could not be opened.
	ErrUpstream = fmt.Errorf("%w: the camera's stream is unavailable", httpjson.ErrUnavailable)
	// ErrDecodeTimeout: the decoder did not finish (or start) in time.
	ErrDecodeTimeout = fmt.Errorf("%w: snapshot decoder busy or too slow", httpjson.ErrUnavailable)
	// ErrDecode: the decoder failed on the keyframe.
	ErrDecode = fmt.Errorf("%w: the keyframe could not be decoded", httpjson.ErrUnavailable)
	// ErrUnsupportedCodec: the camera's video codec has no snapshot decoder.
	ErrUnsupportedCodec = fmt.Errorf("%w: snapshots need H264 or H265 video", httpjson.ErrUnsupportedMediaType)
)
