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
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

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
func feed(t testing.TB, tr *Audio, from, to int) {
	for s := from; s < to; s += 160 {
		tr.Write(int64(s), tone(t, s, 160))
	}
}

// collect drains until at least n frames arrived.
func collect(t testing.TB, tr *Audio, got *[]Frame, n int) {
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

func start(t testing.TB) *Audio {
	t.Helper()
	needFFmpeg(t)
	tr := &Audio{In: Input{G711: &G711{SampleRate: 8000, Channels: 1}}}
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
	if got := tr.AACConfig(); got.Type != mpeg4audio.ObjectTypeAACLC || got.SampleRate != 16000 || got.ChannelCount != 1 {
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
	assertToneFile(t, file)
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

// aacTone is 4 s of the tone as AAC-LC at 16 kHz, by the G.711 transcoder.
func aacTone(t testing.TB) []Frame {
	tr := start(t)
	feed(t, tr, 0, 4*8000)
	var frames []Frame
	collect(t, tr, &frames, 56) // 62.5 frames; the encoder holds the last ones
	return frames
}

func startOpus(t *testing.T) *Audio {
	t.Helper()
	needFFmpeg(t)
	cfg := mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelCount: 1}
	tr := &Audio{In: Input{AAC: &cfg}, Out: OutOpus}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

// AAC (which WebRTC does not carry) becomes Opus on the camera's timeline:
// 20 ms packets at 48 kHz, contiguous, decoding back to the tone.
func TestAACToOpusKeepsTheCamerasTimeline(t *testing.T) {
	aac := aacTone(t)
	tr := startOpus(t)
	const anchor = 16000 // the first AU at 1 s
	for i, f := range aac {
		tr.Write(anchor+int64(i)*aacFrameSamples, f.AU)
	}
	var frames []Frame
	collect(t, tr, &frames, 150) // 56 AUs = 3.58 s = 179 packets; the encoder holds the last ones
	// The first packet starts the encoder's pre-skip (312 samples for
	// libopus) before the first input sample.
	if first := frames[0].PTS; first > 3*anchor || first < 3*anchor-400 {
		t.Errorf("first packet pts %d, want just before %d", first, 3*anchor)
	}
	for i := 1; i < len(frames); i++ {
		if d := frames[i].PTS - frames[i-1].PTS; d != opusFrameSamples {
			t.Fatalf("packet %d: pts step %d, want %d", i, d, opusFrameSamples)
		}
	}
	if tr.ClockRate() != 48000 {
		t.Errorf("clock %d", tr.ClockRate())
	}
	file := filepath.Join(t.TempDir(), "out.ogg")
	w, err := oggwriter.New(file, 48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(f.PTS)}, Payload: f.AU}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	assertToneFile(t, file)
}

// Lost AAC frames cannot be made up: a small loss is skipped (the
// timeline of what follows stays the camera's within MaxDrift), a loss
// beyond MaxDrift restarts the encoder on the camera's clock.
func TestAACToOpusLoss(t *testing.T) {
	aac := aacTone(t)
	tr := startOpus(t)
	write := func(from, to int) {
		for i := from; i < to; i++ {
			tr.Write(int64(i)*aacFrameSamples, aac[i].AU)
		}
	}
	write(0, 20)
	write(21, 30) // one frame (64 ms) lost
	var frames []Frame
	collect(t, tr, &frames, 20)
	if _, _, runs, _ := tr.Stats(); runs != 1 {
		t.Fatalf("64 ms lost restarted the encoder (%d runs)", runs)
	}
	write(33, 56) // three more (192 ms in all): past MaxDrift
	var after []Frame
	poll.Until(t, "a restart on the camera's clock", func() bool {
		tr.Drain(func(f Frame) { after = append(after, f) })
		_, _, runs, _ := tr.Stats()
		return runs == 2 && len(after) > 10 && after[len(after)-1].PTS > 33*aacFrameSamples*3
	})
	// The restarted encoder's packets begin at frame 33's time (what the
	// old one still held is dropped with it).
	if want := int64(33 * aacFrameSamples * 3); after[0].PTS < want-400 || after[0].PTS > want {
		t.Errorf("after the restart packets start at %d, want just before %d", after[0].PTS, want)
	}
}

// assertToneFile decodes an audio file with ffmpeg: the tone, not silence.
func assertToneFile(t *testing.T, file string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", file, "-af", "volumedetect", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg cannot decode %s: %v\n%s", file, err, out)
	}
	// A 440 Hz tone at amplitude 8000 is about -15 dB mean; silence would
	// be -91 dB.
	if !strings.Contains(string(out), "mean_volume: -1") {
		t.Errorf("decoded audio is not the tone:\n%s", out)
	}
}

func TestG711ToAACWithoutFFmpeg(t *testing.T) {
	tr := &Audio{In: Input{G711: &G711{}}, FFmpeg: "/nonexistent/ffmpeg"}
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
	tr := &Audio{In: Input{G711: &G711{SampleRate: 8000, Channels: 1}}}
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
	reportCPU(b, tr)
}

// reportCPU stops tr and reports ffmpeg's CPU per second of audio (one
// iteration), failing a run that dropped input or restarted ffmpeg.
func reportCPU(b *testing.B, tr *Audio) {
	b.StopTimer()
	tr.Close()
	_, dropped, runs, cpu := tr.Stats()
	if dropped > 0 || runs != 1 {
		b.Fatalf("dropped %d chunks, %d runs", dropped, runs)
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/audio-s")
}

// BenchmarkAACToOpus is the WebRTC side's cost per camera: each iteration
// is one second of a camera's AAC (16 kHz, 15.6 frames) made Opus.
func BenchmarkAACToOpus(b *testing.B) {
	aac := aacTone(b)
	cfg := mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelCount: 1}
	tr := &Audio{In: Input{AAC: &cfg}, Out: OutOpus}
	if err := tr.Start(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	frames, n := 0, 0
	for i := range b.N {
		for ; int64(n)*aacFrameSamples < int64(i+1)*16000; n++ {
			tr.Write(int64(n)*aacFrameSamples, aac[n%len(aac)].AU)
		}
		for frames < i*50-10 {
			tr.Drain(func(Frame) { frames++ })
		}
	}
	reportCPU(b, tr)
}

// An ffmpeg that dies is replaced on the camera's clock (not more often
// than RestartDelay), and the audio goes on.
func TestTranscoderSurvivesFFmpegDying(t *testing.T) {
	tr := start(t)
	feed(t, tr, 0, 8000)
	var frames []Frame
	collect(t, tr, &frames, 10)
	if err := tr.proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the killed ffmpeg's output to end", tr.proc.exited)
	// Within RestartDelay of the last start the audio is dropped…
	feed(t, tr, 8000, 2*8000)
	if _, _, runs, _ := tr.Stats(); runs != 1 || tr.proc != nil {
		t.Fatalf("restarted at once (%d runs)", runs)
	}
	// …then a new process takes the camera's timeline up again.
	tr.lastStart = tr.lastStart.Add(-RestartDelay)
	feed(t, tr, 2*8000, 4*8000)
	var after []Frame
	collect(t, tr, &after, 20)
	if _, _, runs, _ := tr.Stats(); runs != 2 {
		t.Fatalf("%d runs, want 2", runs)
	}
	if want := int64(2*16000 - aacPriming); after[0].PTS != want {
		t.Errorf("the new process starts at %d, want %d", after[0].PTS, want)
	}
}
