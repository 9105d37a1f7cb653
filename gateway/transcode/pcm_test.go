package transcode

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os/exec"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// beepPCM is 2 s of 16-bit big-endian PCM at 8 kHz: silence, then from
// sample 8000 (1.000 s) a 1 kHz tone.
func beepPCM() []byte {
	pcm := make([]byte, 2*16000)
	for i := 8000; i < 16000; i++ {
		v := int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/8000+0.5))
		binary.BigEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	return pcm
}

// TestPCMToAACKeepsTheTimeline: a recorded segment's PCM encoded with
// ffmpeg gives the units that cover it, the priming removed: decoding them
// from the first one, the tone starts at 1.000 s, where it is in the PCM.
func TestPCMToAACKeepsTheTimeline(t *testing.T) {
	e := &PCMEncoder{}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	in := &codecs.LPCM{BitDepth: 16, SampleRate: 8000, ChannelCount: 1}
	aus, err := e.EncodeAAC(context.Background(), in, beepPCM())
	if err != nil {
		t.Fatal(err)
	}
	if len(aus) != 32 { // 2 s at 16 kHz: 31.25 units
		t.Fatalf("%d units for 2 s, want 32", len(aus))
	}
	cfg, _ := e.AACConfig(in)
	var adtsIn bytes.Buffer
	for _, au := range aus {
		adtsIn.Write(adts(cfg, au))
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "aac", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "pipe:1")
	cmd.Stdin = &adtsIn
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("decoding: %v", err)
	}
	onset := -1
	for i := 0; i+1 < len(out); i += 2 {
		if v := int16(binary.LittleEndian.Uint16(out[i:])); v > 2000 || v < -2000 {
			onset = i / 2
			break
		}
	}
	// 16 000 samples is 1.000 s at 16 kHz; the codec smears an onset by a
	// few milliseconds.
	if onset < 16000-100 || onset > 16000+100 {
		t.Fatalf("the tone starts at output sample %d (%.1f ms), want 16000 (1000 ms)", onset, float64(onset)/16)
	}
	t.Logf("tone at %.1f ms of the decoded AAC", float64(onset)/16)

	if _, err := e.EncodeAAC(context.Background(), &codecs.LPCM{BitDepth: 8, SampleRate: 8000, ChannelCount: 1}, []byte{1, 2}); err == nil {
		t.Fatal("8-bit PCM encoded")
	}
}

// BenchmarkPCMToAAC encodes a 10 s recorded segment of G.711 (as 16-bit
// PCM at 8 kHz): the cost of the first playback of a segment (the archive
// caches it).
func BenchmarkPCMToAAC(b *testing.B) {
	e := &PCMEncoder{}
	if err := e.Start(); err != nil {
		b.Skip(err)
	}
	pcm := bytes.Repeat(beepPCM(), 5)
	in := &codecs.LPCM{BitDepth: 16, SampleRate: 8000, ChannelCount: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.EncodeAAC(context.Background(), in, pcm); err != nil {
			b.Fatal(err)
		}
	}
}
