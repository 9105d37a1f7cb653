package transcode

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/camgate/camgate/internal/poll"
)

func needFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg is not installed (scripts/test installs it)")
	}
}

// tone is n A-law samples of a 440 Hz sine at 8 kHz, starting at sample off.
func tone(t testing.TB, off, n int) []byte {
	lpcm := make(g711.Alaw, 2*n)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(off+i)/8000))
		lpcm[2*i], lpcm[2*i+1] = byte(uint16(v)>>8), byte(v)
	}
	enc, err := lpcm.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// feed writes packets of 20 ms (160 samples) covering [from, to) samples.
func feed(t testing.TB, tr *G711ToAAC, from, to int) {
	for s := from; s < to; s += 160 {
		tr.Write(int64(s), tone(t, s, 160))
	}
}

// collect drains until at least n frames arrived.
func collect(t *testing.T, tr *G711ToAAC, got *[]Frame, n int) {
	t.Helper()
	poll.Until(t, strconv.Itoa(n)+" AAC frames", func() bool {
		tr.Drain(func(f Frame) { *got = append(*got, f) })
		return len(*got) >= n
	})
}

// assertContiguous checks frames follow each other by one frame each.
func assertContiguous(t *testing.T, frames []Frame) {
	t.Helper()
	for i := 1; i < len(frames); i++ {
		if d := frames[i].PTS - frames[i-1].PTS; d != aacFrameSamples {
			t.Fatalf("frame %d: pts %d after %d (step %d, want %d)", i, frames[i].PTS, frames[i-1].PTS, d, aacFrameSamples)
		}
	}
}

func start(t *testing.T) *G711ToAAC {
	t.Helper()
	needFFmpeg(t)
	tr := &G711ToAAC{In: G711{SampleRate: 8000, Channels: 1}}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

// The frames are on the camera's timeline (input pts 8000 = 1 s → output
// 16000 less the encoder's priming), contiguous, and decode back to audio of
// the input's length.
func TestG711ToAACKeepsTheCamerasTimeline(t *testing.T) {
	tr := start(t)
	feed(t, tr, 8000, 8000+3*8000)
	var frames []Frame
	collect(t, tr, &frames, 44) // 3 s at 16 kHz = 46.9 frames; the encoder holds the last ones
	if frames[0].PTS != 16000-aacPriming {
		t.Errorf("first frame pts %d, want %d", frames[0].PTS, 16000-aacPriming)
	}
	assertContiguous(t, frames)
	if got := tr.Config(); got.Type != mpeg4audio.ObjectTypeAACLC || got.SampleRate != 16000 || got.ChannelCount != 1 {
		t.Errorf("config %+v", got)
	}

	// The AUs are real AAC: wrapped back in ADTS, ffmpeg decodes them.
	var adts bytes.Buffer
	for _, f := range frames {
		b, err := mpeg4audio.ADTSPackets{{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelConfig: 1, ChannelCount: 1, AU: f.AU}}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		adts.Write(b)
	}
	file := filepath.Join(t.TempDir(), "out.aac")
	if err := os.WriteFile(file, adts.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", file, "-af", "volumedetect", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg cannot decode the frames: %v\n%s", err, out)
	}
	// A 440 Hz tone at amplitude 8000 is about -15 dB mean; silence would
	// be -91 dB.
	if !strings.Contains(string(out), "mean_volume: -1") {
		t.Errorf("decoded audio is not the tone:\n%s", out)
	}
}

// Lost packets are filled with silence: the timeline stays contiguous and
// one process serves it. A gap longer than MaxGap starts a new process on
// the new timeline.
func TestG711ToAACGaps(t *testing.T) {
	tr := start(t)
	feed(t, tr, 0, 8000)
	feed(t, tr, 8000+4000, 2*8000) // half a second lost
	var frames []Frame
	collect(t, tr, &frames, 28) // 2 s = 31 frames
	assertContiguous(t, frames)
	if _, _, runs, _ := tr.Stats(); runs != 1 {
		t.Fatalf("a short gap restarted the encoder (%d runs)", runs)
	}

	far := 2*8000 + 5*8000
	feed(t, tr, far, far+2*8000)
	var after []Frame
	collect(t, tr, &after, 28)
	assertContiguous(t, after)
	if want := int64(far)*2 - aacPriming; after[0].PTS != want {
		t.Errorf("after a 5 s gap the first frame is at %d, want %d", after[0].PTS, want)
	}
	if _, _, runs, _ := tr.Stats(); runs != 2 {
		t.Errorf("a 5 s gap: %d encoder runs, want 2", runs)
	}
}

func TestG711ToAACWithoutFFmpeg(t *testing.T) {
	tr := &G711ToAAC{FFmpeg: "/nonexistent/ffmpeg"}
	if err := tr.Start(); err == nil {
		t.Fatal("started without ffmpeg")
	}
}

// BenchmarkG711ToAAC is the cost of one camera's transcoding: each
// iteration is one second of a camera's G.711 (50 packets of 20 ms), fed as
// fast as ffmpeg takes it. cpu-ms/audio-s is ffmpeg's CPU time (user +
// system) per second of audio; the Go side's cost is ns/op.
func BenchmarkG711ToAAC(b *testing.B) {
	needFFmpeg(b)
	tr := &G711ToAAC{In: G711{SampleRate: 8000, Channels: 1}}
	if err := tr.Start(); err != nil {
		b.Fatal(err)
	}
	pkts := make([][]byte, 50)
	for i := range pkts {
		pkts[i] = tone(b, i*160, 160)
	}
	b.ReportAllocs()
	b.ResetTimer()
	frames := 0
	for i := range b.N {
		for j, p := range pkts {
			tr.Write(int64(i*8000+j*160), p)
		}
		// Keep pace with ffmpeg so the bounded queue drops nothing.
		for frames < (i*16000)/aacFrameSamples-8 {
			tr.Drain(func(Frame) { frames++ })
		}
	}
	b.StopTimer()
	tr.Close()
	_, dropped, runs, cpu := tr.Stats()
	if dropped > 0 || runs != 1 {
		b.Fatalf("dropped %d chunks, %d runs", dropped, runs)
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/audio-s")
}
