package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/camgate/camgate/gateway/transcode"
)

// seamErrors encodes 4 s of a steady 440 Hz tone (8 kHz PCM, as G.711
// cameras' audio is recorded) cut into three segments of 1.3 s with
// ffmpeg, one segment at a time as playback does, decodes the units of
// all three one after the other, and returns the RMS error against the
// tone in each 20 ms window: in the middle of segments, and around the
// two seams. With around false, each segment is encoded alone.
func seamErrors(t *testing.T, around bool) (middle, seams []float64) {
	t.Helper()
	enc := &transcode.PCMEncoder{}
	if err := enc.Start(); err != nil {
		t.Fatal(err)
	}
	const rate, amp = 8000, 8000.0
	tone := func(n int64) int16 { return int16(amp * math.Sin(2*math.Pi*440*float64(n)/rate)) }
	lpcm := &fmp4.InitTrack{ID: 2, TimeScale: rate, Codec: &codecs.LPCM{BitDepth: 16, SampleRate: rate, ChannelCount: 1}}
	track := pcmTrack{in: lpcm, out: aacTrack(lpcm, enc)}
	t0 := int64(1000 * rate) // the recording starts at 1000 s after the epoch
	segment := func(i int) (fmp4.Parts, time.Duration) {
		start := t0 + int64(i)*13*rate/10
		pcm := make([]byte, 2*13*rate/10)
		for j := range int64(len(pcm) / 2) {
			binary.BigEndian.PutUint16(pcm[2*j:], uint16(tone(start+j)))
		}
		return fmp4.Parts{{Tracks: []*fmp4.PartTrack{{ID: 2, Samples: []*fmp4.Sample{{Duration: uint32(len(pcm) / 2), Payload: pcm}}}}}},
			time.Duration(start) * time.Second / rate
	}
	var adts bytes.Buffer
	var first, seam1, seam2 int64 // in 16 kHz ticks since the epoch
	cfg, _ := enc.AACConfig(lpcm.Codec.(*codecs.LPCM))
	for i := range 3 {
		parts, epoch := segment(i)
		var nb []pcmRun
		for _, j := range []int{i - 1, i + 1} {
			if around && j >= 0 && j < 3 {
				p, e := segment(j)
				r, err := joinPCM(lpcm, p, int64(e)*rate/int64(time.Second))
				if err != nil {
					t.Fatal(err)
				}
				nb = append(nb, r)
			}
		}
		if err := encodePCM(context.Background(), enc, track, parts, epoch, nb); err != nil {
			t.Fatal(err)
		}
		pt := parts[0].Tracks[0]
		at := int64(pt.BaseTime) + int64(epoch)*16000/int64(time.Second)
		switch i {
		case 0:
			first = at
		case 1:
			seam1 = at
		case 2:
			seam2 = at
		}
		for _, s := range pt.Samples {
			b, err := mpeg4audio.ADTSPackets{{Type: cfg.Type, SampleRate: cfg.SampleRate, ChannelConfig: 1, ChannelCount: 1, AU: s.Payload}}.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			adts.Write(b)
		}
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "aac", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "pipe:1")
	cmd.Stdin = &adts
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("decoding: %v", err)
	}
	const win = 320                                          // 20 ms at 16 kHz
	for w := int64(1); (w+1)*win*2 <= int64(len(out)); w++ { // the first window has no decoded past
		var sum float64
		for j := w * win; j < (w+1)*win; j++ {
			x := first + j // 16 kHz ticks since the epoch: the tone's sample x/2
			want := amp * math.Sin(2*math.Pi*440*float64(x)/16000)
			d := float64(int16(binary.LittleEndian.Uint16(out[2*j:]))) - want
			sum += d * d
		}
		rms := math.Sqrt(sum / win)
		lo, hi := first+w*win, first+(w+1)*win
		near := func(s int64) bool { return hi > s-2*win && lo < s+2*win }
		if near(seam1) || near(seam2) {
			seams = append(seams, rms)
		} else {
			middle = append(middle, rms)
		}
	}
	return middle, seams
}

// TestPCMSeamsJoin: a G.711 recording played over HLS is encoded one
// segment at a time; encoded between its neighbours' samples, a segment
// joins the next one as cleanly as the audio within a segment is coded
// (no click at the seams). Encoded alone, the seams are many times worse:
// the check can fail.
func TestPCMSeamsJoin(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is required: apt-get install -y ffmpeg (or run scripts/test)")
	}
	median := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	middle, seams := seamErrors(t, true)
	worst := slices.Max(seams)
	t.Logf("between neighbours: RMS error %.0f in segments (median), %.0f at worst around the seams (tone amplitude %d)", median(middle), worst, 8000)
	if worst > 3*median(middle) {
		t.Fatalf("a seam's error %.0f is more than 3 times the segments' %.0f: it clicks", worst, median(middle))
	}
	middle, seams = seamErrors(t, false)
	t.Logf("alone: RMS error %.0f in segments (median), %.0f at worst around the seams", median(middle), slices.Max(seams))
	if slices.Max(seams) < 3*median(middle) {
		t.Fatalf("segments encoded alone join cleanly too (%.0f against %.0f): the test cannot tell", slices.Max(seams), median(middle))
	}
}
