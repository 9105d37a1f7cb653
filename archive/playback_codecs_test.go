package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// HLS playback serves what the live HLS serves: H264/H265 and AAC/Opus;
// G.711 (recorded as LPCM) is served as AAC with an encoder, else named
// and left out; M-JPEG is a 415.
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
		enc     AudioEncoder
	}{
		{"h264+opus with sound", []*fmp4.InitTrack{h264, opus}, true, 2, "", nil, "", nil},
		{"h264+opus without", []*fmp4.InitTrack{h264, opus}, false, 1, "", nil, "", nil},
		{"h264+lpcm with sound", []*fmp4.InitTrack{h264, lpcm}, true, 1, "LPCM", nil, "", nil},
		{"h264+lpcm without", []*fmp4.InitTrack{h264, lpcm}, false, 1, "", nil, "", nil},
		{"h264+lpcm with sound and an encoder", []*fmp4.InitTrack{h264, lpcm}, true, 2, "", nil, "", silentAAC{}},
		{"lpcm alone with an encoder", []*fmp4.InitTrack{lpcm}, true, 1, "", nil, "", silentAAC{}},
		{"h264+lpcm without sound, an encoder", []*fmp4.InitTrack{h264, lpcm}, false, 1, "", nil, "", silentAAC{}},
		{"mjpeg", []*fmp4.InitTrack{mjpeg}, true, 0, "", errNotHLS, "M-JPEG video", nil},
		{"mjpeg+lpcm without sound", []*fmp4.InitTrack{mjpeg, lpcm}, false, 0, "", errNotHLS, "M-JPEG video", nil},
		{"lpcm alone", []*fmp4.InitTrack{lpcm}, true, 0, "LPCM", errNotHLS, "LPCM audio", nil},
		{"opus alone without sound", []*fmp4.InitTrack{opus}, false, 0, "", errNoTracks, "", nil},
	} {
		keep, dropped, _, err := hlsTracks(&fmp4.Init{Tracks: tc.tracks}, tc.audio, tc.enc)
		if len(keep) != tc.keep || strings.Join(dropped, ",") != tc.dropped || !errors.Is(err, tc.err) ||
			(tc.errText != "" && !strings.Contains(fmt.Sprint(err), tc.errText)) {
			t.Errorf("%s: kept %d, dropped %v, %v", tc.name, len(keep), dropped, err)
		}
		if errors.Is(err, errNotHLS) && statusOf(err) != 415 {
			t.Errorf("%s: status %d", tc.name, statusOf(err))
		}
	}
}

// silentAAC stands in for ffmpeg where only the archive's own handling of
// the recorded PCM is tested (the fuzzers, the part layout): one 1-byte
// unit per 1024 output samples (at 16 kHz, for 16-bit input of any rate).
type silentAAC struct{}

func (silentAAC) AACConfig(c *codecs.LPCM) (mpeg4audio.AudioSpecificConfig, bool) {
	return mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelCount: 1}, c.BitDepth == 16 && c.SampleRate > 0
}

func (silentAAC) EncodeAAC(_ context.Context, c *codecs.LPCM, pcm []byte) ([][]byte, error) {
	n := int64(len(pcm)) / int64(2*max(c.ChannelCount, 1)) * 16000 / int64(c.SampleRate)
	aus := make([][]byte, (n+1023)/1024)
	for i := range aus {
		aus[i] = []byte{byte(i)}
	}
	return aus, nil
}

// TestEncodePCMParts: the recorded PCM of a segment's parts is encoded as
// one stream and its units go back to the parts that held their input, on
// the epoch's grid of units in the AAC's clock; a short hole is silence,
// an overlap keeps the first samples, a long hole is an error.
func TestEncodePCMParts(t *testing.T) {
	lpcm := &fmp4.InitTrack{ID: 2, TimeScale: 8000, Codec: &codecs.LPCM{BitDepth: 16, SampleRate: 8000, ChannelCount: 1}}
	track := pcmTrack{in: lpcm, out: aacTrack(lpcm, silentAAC{})}
	video := func() *fmp4.PartTrack {
		return &fmp4.PartTrack{ID: 1, Samples: []*fmp4.Sample{{Duration: 3600, Payload: []byte{1}}}}
	}
	audio := func(base uint64, samples int) *fmp4.PartTrack {
		return &fmp4.PartTrack{ID: 2, BaseTime: base, Samples: []*fmp4.Sample{{Duration: uint32(samples), Payload: make([]byte, 2*samples)}}}
	}
	for _, tc := range []struct {
		name  string
		parts fmp4.Parts
		want  []string // per part: "base:units"
		err   string
	}{
		{"contiguous", fmp4.Parts{{Tracks: []*fmp4.PartTrack{video(), audio(80000, 8000)}}, {Tracks: []*fmp4.PartTrack{audio(88000, 8000), video()}}},
			[]string{"160768:15", "176128:16"}, ""}, // units on the epoch's grid of 1024: 157 … 187
		{"a 0.5 s hole", fmp4.Parts{{Tracks: []*fmp4.PartTrack{audio(0, 8000)}}, {Tracks: []*fmp4.PartTrack{audio(12000, 4000)}}},
			[]string{"0:24", "24576:8"}, ""}, // the silence up to part 1's 24000 stays in part 0
		{"overlap", fmp4.Parts{{Tracks: []*fmp4.PartTrack{audio(0, 8000)}}, {Tracks: []*fmp4.PartTrack{audio(7000, 2000)}}},
			[]string{"0:16", "16384:2"}, ""},
		{"a 3 s hole ends the audio", fmp4.Parts{{Tracks: []*fmp4.PartTrack{audio(0, 8000)}}, {Tracks: []*fmp4.PartTrack{audio(32000, 8000)}}}, []string{"0:16"}, ""},
		{"a part from before the first ends it", fmp4.Parts{{Tracks: []*fmp4.PartTrack{audio(8000, 8000)}}, {Tracks: []*fmp4.PartTrack{audio(0, 8000)}}}, []string{"16384:16"}, ""},
		{"a time far off (hostile file)", fmp4.Parts{{Tracks: []*fmp4.PartTrack{audio(1<<62, 8000)}}, {Tracks: []*fmp4.PartTrack{audio(0, 8000)}}}, nil, ""},
		{"no unit starts within: no PCM left as AAC", fmp4.Parts{{Tracks: []*fmp4.PartTrack{video(), audio(80010, 100)}}}, nil, ""},
		{"2000 holes of 2 s: bounded", func() fmp4.Parts {
			var ps fmp4.Parts
			for i := range 2000 {
				ps = append(ps, &fmp4.Part{Tracks: []*fmp4.PartTrack{audio(uint64(i)*16000, 1)}})
			}
			return ps
		}(), nil, ""}, // 10 minutes of audio (300 parts), then none: counted below
	} {
		err := encodePCM(context.Background(), silentAAC{}, track, tc.parts, 0, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, p := range tc.parts {
			for _, pt := range p.Tracks {
				if pt.ID == 2 {
					got = append(got, fmt.Sprintf("%d:%d", pt.BaseTime, len(pt.Samples)))
				}
			}
		}
		if strings.HasPrefix(tc.name, "2000 holes") {
			if len(got) != 299 { // the 300th part's one sample starts no unit
				t.Errorf("%s: %d parts with audio, want 299 (10 minutes)", tc.name, len(got))
			}
			continue
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: parts %v, want %v", tc.name, got, tc.want)
		}
	}
}

// pcmSeen is silentAAC that keeps the PCM it was given.
type pcmSeen struct {
	silentAAC
	got *[]byte
}

func (p pcmSeen) EncodeAAC(ctx context.Context, c *codecs.LPCM, pcm []byte) ([][]byte, error) {
	*p.got = append([]byte(nil), pcm...)
	return p.silentAAC.EncodeAAC(ctx, c, pcm)
}

// TestEncodePCMBetweenNeighbours: a segment's audio is encoded between
// the last samples of the segment before it and the first of the one
// after (two units each), so that the encoder's overlap joins them.
func TestEncodePCMBetweenNeighbours(t *testing.T) {
	lpcm := &fmp4.InitTrack{ID: 2, TimeScale: 8000, Codec: &codecs.LPCM{BitDepth: 16, SampleRate: 8000, ChannelCount: 1}}
	track := pcmTrack{in: lpcm, out: aacTrack(lpcm, silentAAC{})}
	filled := func(n int, v byte) []byte { return bytes.Repeat([]byte{v}, 2*n) }
	// The segment: 1 s from 10 s (sample 80000); before it 9–10 s, after it 11–12 s.
	parts := fmp4.Parts{{Tracks: []*fmp4.PartTrack{{ID: 2, BaseTime: 0, Samples: []*fmp4.Sample{{Duration: 8000, Payload: filled(8000, 2)}}}}}}
	prev := pcmRun{at: 72000, pcm: filled(8000, 1), frame: 2}
	next := pcmRun{at: 88000, pcm: filled(8000, 3), frame: 2}
	var got []byte
	if err := encodePCM(context.Background(), pcmSeen{got: &got}, track, parts, 10*time.Second, []pcmRun{next, prev}); err != nil {
		t.Fatal(err)
	}
	// Units 157 … 171 start within the segment (160768 … 175104 at 16 kHz);
	// the window runs from unit 155 (79360 at 8 kHz) to unit 174 (89088).
	want := append(append(filled(640, 1), filled(8000, 2)...), filled(1088, 3)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded %d bytes (%v … %v), want %d: 640 samples before, the segment's 8000, 1088 after", len(got), got[:4], got[len(got)-4:], len(want))
	}
	pt := parts[0].Tracks[0]
	if pt.BaseTime != 160768-160000 || len(pt.Samples) != 15 {
		t.Fatalf("the segment's AAC: base %d, %d units; want 768 (from its start), 15", pt.BaseTime, len(pt.Samples))
	}
}

// failingAAC is an encoder that fails (ffmpeg crashed or timed out).
type failingAAC struct{ silentAAC }

func (failingAAC) EncodeAAC(context.Context, *codecs.LPCM, []byte) ([][]byte, error) {
	return nil, errors.New("ffmpeg: exit status 1")
}

// TestEncodePCMFailureKeepsTheVideo: when the encoder fails, the segment's
// PCM is taken out (never served as AAC) and its video stays.
func TestEncodePCMFailureKeepsTheVideo(t *testing.T) {
	lpcm := &fmp4.InitTrack{ID: 2, TimeScale: 8000, Codec: &codecs.LPCM{BitDepth: 16, SampleRate: 8000, ChannelCount: 1}}
	parts := fmp4.Parts{{Tracks: []*fmp4.PartTrack{
		{ID: 1, Samples: []*fmp4.Sample{{Duration: 3600, Payload: []byte{1}}}},
		{ID: 2, Samples: []*fmp4.Sample{{Duration: 8000, Payload: make([]byte, 16000)}}},
	}}}
	err := encodePCM(context.Background(), failingAAC{}, pcmTrack{in: lpcm, out: aacTrack(lpcm, silentAAC{})}, parts, 10*time.Second, nil)
	if err == nil {
		t.Fatal("no error")
	}
	if len(parts[0].Tracks) != 1 || parts[0].Tracks[0].ID != 1 {
		t.Fatalf("after a failed encoding the part holds %d tracks, want the video alone", len(parts[0].Tracks))
	}
}
