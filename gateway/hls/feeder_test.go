package hls

import (
	"errors"
	"reflect"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/camgate/camgate/internal/httpjson"
)

// TestNewTracksPerCameraCodec: what HLS carries of each camera codec row.
func TestNewTracksPerCameraCodec(t *testing.T) {
	h264 := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}}
	h265 := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H265{PayloadTyp: 96}}}
	mjpeg := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.MJPEG{}}}
	aac := &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.MPEG4Audio{
		PayloadTyp: 97, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3,
		Config: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 1},
	}}}
	opus := &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.Opus{PayloadTyp: 111, ChannelCount: 2}}}
	pcma := &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{PayloadTyp: 8, MULaw: false, SampleRate: 8000, ChannelCount: 1}}}

	tests := []struct {
		name    string
		medias  []*description.Media
		codecs  []string // the muxer tracks' codec types
		dropped []string
		err     bool
	}{
		{"H264+AAC", []*description.Media{h264, aac}, []string{"*codecs.H264", "*codecs.MPEG4Audio"}, nil, false},
		{"H265+AAC", []*description.Media{h265, aac}, []string{"*codecs.H265", "*codecs.MPEG4Audio"}, nil, false},
		{"H264+Opus", []*description.Media{h264, opus}, []string{"*codecs.H264", "*codecs.Opus"}, nil, false},
		{"H264+PCMA", []*description.Media{h264, pcma}, []string{"*codecs.H264"}, []string{"G711"}, false},
		{"H265+PCMA", []*description.Media{h265, pcma}, []string{"*codecs.H265"}, []string{"G711"}, false},
		{"H264 video variant", []*description.Media{h264}, []string{"*codecs.H264"}, nil, false},
		{"MJPEG", []*description.Media{mjpeg}, nil, nil, true},
		{"AAC only", []*description.Media{aac}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := newTracks(&description.Session{Medias: tt.medias}, nil)
			if tt.err {
				if !errors.Is(err, ErrNoPlayableTrack) || !errors.Is(err, httpjson.ErrUnsupportedMediaType) {
					t.Fatalf("err = %v, want ErrNoPlayableTrack (415)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tr := range plan.tracks {
				got = append(got, reflect.TypeOf(tr.Codec).String())
			}
			if !reflect.DeepEqual(got, tt.codecs) || !reflect.DeepEqual(plan.droppedAudio, tt.dropped) {
				t.Errorf("tracks %v dropped %v, want %v dropped %v", got, plan.droppedAudio, tt.codecs, tt.dropped)
			}
		})
	}
}
