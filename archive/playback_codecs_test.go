package archive

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// HLS playback serves what the live HLS serves: H264/H265 and AAC/Opus;
// G.711 (recorded as LPCM) is named and left out, M-JPEG is a 415.
func TestHLSTracks(t *testing.T) {
	h264 := &fmp4.InitTrack{ID: 1, TimeScale: 90000, Codec: &codecs.H264{}}
	mjpeg := &fmp4.InitTrack{ID: 1, TimeScale: 90000, Codec: &codecs.MJPEG{Width: 320, Height: 240}}
	lpcm := &fmp4.InitTrack{ID: 2, TimeScale: 8000, Codec: &codecs.LPCM{BitDepth: 16, SampleRate: 8000, ChannelCount: 1}}
	opus := &fmp4.InitTrack{ID: 2, TimeScale: 48000, Codec: &codecs.Opus{ChannelCount: 2}}
	for _, tc := range []struct {
		name    string
		tracks  []*fmp4.InitTrack
		audio   bool
		keep    int
		dropped string
		err     error
		errText string
	}{
		{"h264+opus with sound", []*fmp4.InitTrack{h264, opus}, true, 2, "", nil, ""},
		{"h264+opus without", []*fmp4.InitTrack{h264, opus}, false, 1, "", nil, ""},
		{"h264+lpcm with sound", []*fmp4.InitTrack{h264, lpcm}, true, 1, "LPCM", nil, ""},
		{"h264+lpcm without", []*fmp4.InitTrack{h264, lpcm}, false, 1, "", nil, ""},
		{"mjpeg", []*fmp4.InitTrack{mjpeg}, true, 0, "", errNotHLS, "M-JPEG video"},
		{"mjpeg+lpcm without sound", []*fmp4.InitTrack{mjpeg, lpcm}, false, 0, "", errNotHLS, "M-JPEG video"},
		{"lpcm alone", []*fmp4.InitTrack{lpcm}, true, 0, "LPCM", errNotHLS, "LPCM audio"},
		{"opus alone without sound", []*fmp4.InitTrack{opus}, false, 0, "", errNoTracks, ""},
	} {
		keep, dropped, err := hlsTracks(&fmp4.Init{Tracks: tc.tracks}, tc.audio)
		if len(keep) != tc.keep || strings.Join(dropped, ",") != tc.dropped || !errors.Is(err, tc.err) ||
			(tc.errText != "" && !strings.Contains(fmt.Sprint(err), tc.errText)) {
			t.Errorf("%s: kept %d, dropped %v, %v", tc.name, len(keep), dropped, err)
		}
		if errors.Is(err, errNotHLS) && statusOf(err) != 415 {
			t.Errorf("%s: status %d", tc.name, statusOf(err))
		}
	}
}
