// Package transcode turns a camera's audio that a protocol cannot carry
// into audio it can: G.711 (most Hikvision and Dahua cameras) into AAC for
// HLS. It runs once per camera and protocol (the HLS muxer of a camera is
// shared by all its viewers), never per viewer, with an ffmpeg process:
// there is no well-kept pure-Go AAC encoder, and ffmpeg's is the one every
// player is tested against.
//
// The transcoder is fed from the muxer's goroutine and never blocks it:
// input goes through a bounded queue to ffmpeg's stdin (what does not fit
// is dropped and counted), output AAC frames come back on a bounded queue
// that the same goroutine drains. Timestamps are the camera's: each output
// frame's pts is the input's first pts plus the samples encoded before it,
// so lip sync does not depend on when ffmpeg answers. A gap in the input
// (lost packets) is filled with silence up to MaxGap; a longer gap or a
// jump back restarts the process on the new timeline.
package transcode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// ErrNoFFmpeg: the ffmpeg program cannot be found.
var ErrNoFFmpeg = errors.New("ffmpeg is not installed (needed to transcode audio)")

// G711 describes a G.711 input.
type G711 struct {
	MULaw      bool // µ-law (PCMU); else A-law (PCMA)
	SampleRate int  // 8000 for nearly every camera
	Channels   int
}

// aacFrameSamples is the samples per AAC-LC frame.
const aacFrameSamples = 1024

// aacPriming is what ffmpeg's AAC encoder puts before the first input
// sample (its initial_padding): the first output frame starts this many
// samples before the input.
const aacPriming = 1024

// MaxGap is the longest input gap filled with silence; longer ones restart
// the encoder on the new timeline.
const MaxGap = 2 * time.Second

// queueLen bounds both queues (input chunks; output frames).
const queueLen = 256

// Frame is one AAC access unit with its pts in the output clock
// (Config.SampleRate).
type Frame struct {
	PTS int64
	AU  []byte
}

// AACOutput is the AAC every G.711 input becomes: AAC-LC mono at 16 kHz
// (G.711 carries 8 kHz speech; every HLS player decodes this).
func AACOutput(in G711) mpeg4audio.AudioSpecificConfig {
	return mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelCount: max(in.Channels, 1)}
}

// G711ToAAC is one camera's G.711 → AAC transcoder. Set the fields, then
// Start; Write and Drain from one goroutine; Close when done.
type G711ToAAC struct {
	In G711
	// FFmpeg is the program (default "ffmpeg" on PATH).
	FFmpeg string
	Logger *slog.Logger

	out mpeg4audio.AudioSpecificConfig

	proc    *process
	anchor  int64 // input pts of the process's first sample
	fed     int64 // input samples written to the process (silence included)
	dropped atomic.Uint64
	frames  atomic.Uint64

	mu   sync.Mutex
	cpu  time.Duration // of processes that ended
	runs int
}

// Config is the AAC the frames are.
func (t *G711ToAAC) Config() mpeg4audio.AudioSpecificConfig { return t.out }

// Start checks ffmpeg can be found. The process itself starts with the
// first Write.
func (t *G711ToAAC) Start() error {
	if t.In.SampleRate <= 0 {
		t.In.SampleRate = 8000
	}
	if t.In.Channels <= 0 {
		t.In.Channels = 1
	}
	if t.FFmpeg == "" {
		t.FFmpeg = "ffmpeg"
	}
	if t.Logger == nil {
		t.Logger = slog.Default()
	}
	p, err := exec.LookPath(t.FFmpeg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoFFmpeg, err)
	}
	t.FFmpeg = p
	t.out = AACOutput(t.In)
	return nil
}

// Write feeds the G.711 samples of one packet whose first sample has pts
// (input clock, SampleRate). It never blocks.
func (t *G711ToAAC) Write(pts int64, samples []byte) {
	n := int64(len(samples) / t.In.Channels)
	if n == 0 {
		return
	}
	if t.proc != nil {
		next := t.anchor + t.fed
		gap := pts - next
		switch {
		case gap > int64(MaxGap/time.Second)*int64(t.In.SampleRate), gap < -int64(t.In.SampleRate):
			t.Logger.Info("audio transcoder restarts on a new timeline", "gap_samples", gap)
			t.stop()
		case gap > 0:
			t.send(silence(t.In.MULaw, int(gap)*t.In.Channels))
		case gap < 0:
			// Overlaps what was fed (a repeated packet): keep the new tail.
			skip := min(-gap, n)
			samples, pts, n = samples[skip*int64(t.In.Channels):], pts+skip, n-skip
			if n == 0 {
				return
			}
		}
	}
	if t.proc == nil {
		if err := t.startProcess(pts); err != nil {
			t.Logger.Warn("audio transcoder cannot start", "error", err)
			return
		}
	}
	t.send(samples)
}

// send queues a copy of b for ffmpeg, or drops it when the queue is full.
func (t *G711ToAAC) send(b []byte) {
	t.fed += int64(len(b) / t.In.Channels)
	select {
	case t.proc.in <- bytes.Clone(b):
	default:
		t.dropped.Add(1)
	}
}

// Drain calls fn for each AAC frame ready now, oldest first, without
// waiting.
func (t *G711ToAAC) Drain(fn func(Frame)) {
	if t.proc == nil {
		return
	}
	for {
		select {
		case f := <-t.proc.out:
			t.frames.Add(1)
			fn(f)
		default:
			return
		}
	}
}

// Stats reports the frames produced, the input chunks dropped (ffmpeg did
// not keep up), the processes started and the CPU time of those that ended.
func (t *G711ToAAC) Stats() (frames, dropped uint64, runs int, cpu time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.frames.Load(), t.dropped.Load(), t.runs, t.cpu
}

// Close stops the process.
func (t *G711ToAAC) Close() { t.stop() }

func (t *G711ToAAC) stop() {
	if t.proc == nil {
		return
	}
	cpu := t.proc.close()
	t.mu.Lock()
	t.cpu += cpu
	t.mu.Unlock()
	t.proc = nil
}

func (t *G711ToAAC) startProcess(pts int64) error {
	inFmt := "alaw"
	if t.In.MULaw {
		inFmt = "mulaw"
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-probesize", "32", "-analyzeduration", "0", "-fflags", "+nobuffer",
		"-f", inFmt, "-ar", strconv.Itoa(t.In.SampleRate), "-ac", strconv.Itoa(t.In.Channels), "-i", "pipe:0",
		"-c:a", "aac", "-b:a", "32k", "-ar", strconv.Itoa(t.out.SampleRate), "-ac", strconv.Itoa(t.out.ChannelCount),
		"-f", "adts", "-flush_packets", "1", "pipe:1"}
	p, err := startProcess(t.FFmpeg, args)
	if err != nil {
		return err
	}
	// Output frame k starts at the anchor (in the output clock) plus k
	// frames, less the encoder's priming.
	base := pts*int64(t.out.SampleRate)/int64(t.In.SampleRate) - aacPriming
	go p.readADTS(t.out, base, t.Logger)
	t.proc, t.anchor, t.fed = p, pts, 0
	t.mu.Lock()
	t.runs++
	t.mu.Unlock()
	return nil
}

// silence is n samples of G.711 silence.
func silence(mulaw bool, n int) []byte {
	v := byte(0xD5) // A-law 0
	if mulaw {
		v = 0xFF // µ-law 0
	}
	return bytes.Repeat([]byte{v}, n)
}

// process is one ffmpeg run: a writer goroutine copies the input queue to
// its stdin, a reader goroutine parses its stdout into the output queue.
type process struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	in     chan []byte
	out    chan Frame
	stdout io.ReadCloser
	stderr *bytes.Buffer
	done   chan struct{} // the writer ended
	read   chan struct{} // the reader ended
}

func startProcess(path string, args []string) (*process, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	p := &process{cmd: cmd, cancel: cancel, in: make(chan []byte, queueLen), out: make(chan Frame, queueLen),
		stdout: stdout, stderr: &bytes.Buffer{}, done: make(chan struct{}), read: make(chan struct{})}
	cmd.Stderr = &limitedWriter{b: p.stderr, max: 4096}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	go func() {
		defer close(p.done)
		defer stdin.Close()
		for b := range p.in {
			if _, err := stdin.Write(b); err != nil {
				for range p.in { // ffmpeg is gone: drain until closed
				}
				return
			}
		}
	}()
	return p, nil
}

// readADTS parses ffmpeg's ADTS output into frames until it ends.
func (p *process) readADTS(cfg mpeg4audio.AudioSpecificConfig, base int64, log *slog.Logger) {
	defer close(p.read)
	r := bufio.NewReaderSize(p.stdout, 16<<10)
	var hdr [7]byte
	for k := int64(0); ; k++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		size := int(hdr[3]&0x03)<<11 | int(hdr[4])<<3 | int(hdr[5])>>5
		if size < 7 || size > 7+mpeg4audio.MaxAccessUnitSize {
			log.Warn("audio transcoder: bad ADTS frame from ffmpeg", "size", size)
			return
		}
		buf := make([]byte, size)
		copy(buf, hdr[:])
		if _, err := io.ReadFull(r, buf[7:]); err != nil {
			return
		}
		var pkts mpeg4audio.ADTSPackets
		if err := pkts.Unmarshal(buf); err != nil || len(pkts) != 1 {
			log.Warn("audio transcoder: bad ADTS frame from ffmpeg", "error", err)
			return
		}
		if pkts[0].SampleRate != cfg.SampleRate || pkts[0].ChannelCount != cfg.ChannelCount {
			log.Warn("audio transcoder: ffmpeg's AAC is not what was asked", "rate", pkts[0].SampleRate, "channels", pkts[0].ChannelCount)
			return
		}
		pts := base + k*aacFrameSamples
		if pts < 0 {
			continue // the encoder's priming before the first input sample
		}
		select {
		case p.out <- Frame{PTS: pts, AU: pkts[0].AU}:
		default:
			// Nobody drains (the muxer is gone or stalled): drop.
		}
	}
}

// close ends the process and returns the CPU time it used.
func (p *process) close() time.Duration {
	close(p.in)
	// stdin closes: ffmpeg flushes and exits, its stdout ends. A process
	// that does not is killed.
	timer := time.AfterFunc(2*time.Second, p.cancel)
	<-p.done
	<-p.read // all reads of stdout are done before Wait closes it
	err := p.cmd.Wait()
	timer.Stop()
	p.cancel()
	if err != nil && p.stderr.Len() > 0 {
		slog.Default().Debug("audio transcoder ended", "error", err, "stderr", p.stderr.String())
	}
	if st := p.cmd.ProcessState; st != nil {
		return st.UserTime() + st.SystemTime()
	}
	return 0
}

type limitedWriter struct {
	b   *bytes.Buffer
	max int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.max - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
