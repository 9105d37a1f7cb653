// Package transcode turns a camera's audio that a protocol cannot carry
// into audio it can: G.711 (most Hikvision and Dahua cameras) into AAC for
// HLS, AAC into Opus for WebRTC. It runs once per camera and protocol (the
// HLS muxer of a camera, and its WebRTC tracks, are shared by all its
// viewers), never per viewer, with an ffmpeg process: there is no
// well-kept pure-Go AAC or Opus encoder, and ffmpeg's are the ones every
// player is tested against.
//
// The transcoder is fed from the muxer's goroutine and never blocks it:
// input goes through a bounded queue to ffmpeg's stdin (what does not fit
// is dropped and counted), output AAC frames come back on a bounded queue
// that the same goroutine drains. Timestamps are the camera's: each output
// frame's pts is the input's first pts plus the samples encoded before it,
// so lip sync does not depend on when ffmpeg answers. A gap in the input
// (lost packets) is filled with silence up to MaxGap (G.711), or, for AAC
// whose frames cannot be made up, skipped until the output has drifted
// MaxDrift from the camera's clock; a longer gap, more drift or a jump
// back restarts the process on the new timeline.
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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// ErrNoFFmpeg: the ffmpeg program cannot be found.
var ErrNoFFmpeg = errors.New("ffmpeg is not installed (needed to transcode audio)")

// G711 describes a G.711 input.
type G711 struct {
	MULaw      bool // µ-law (PCMU); else A-law (PCMA)
	SampleRate int  // 8000 for nearly every camera
	Channels   int
}

// Input is what the camera sends: G711 or AAC (exactly one).
type Input struct {
	G711 *G711
	AAC  *mpeg4audio.AudioSpecificConfig
}

// Output is what the protocol carries.
type Output int

const (
	// OutAAC is AAC-LC in ADTS, at 16 kHz (HLS).
	OutAAC Output = iota
	// OutOpus is Opus at 48 kHz in 20 ms packets (WebRTC).
	OutOpus
)

const (
	aacFrameSamples  = 1024 // per AAC-LC frame
	opusFrameSamples = 960  // per 20 ms Opus packet at 48 kHz
	// aacPriming is what ffmpeg's AAC encoder puts before the first input
	// sample (its initial_padding); Opus says its own (pre-skip).
	aacPriming = 1024
)

// MaxGap is the longest input gap filled with silence (G.711); longer ones
// restart the encoder on the new timeline.
const MaxGap = 2 * time.Second

// MaxDrift is how far AAC input with lost frames may fall behind the
// camera's clock before the encoder restarts on it.
const MaxDrift = 100 * time.Millisecond

// RestartDelay is the least time between the starts of two processes
// when one ended on its own (ffmpeg crashed or refused the input).
const RestartDelay = 5 * time.Second

// queueLen bounds both queues (input chunks; output frames).
const queueLen = 256

// Frame is one encoded access unit with its pts in the output clock
// (Audio.ClockRate).
type Frame struct {
	PTS int64
	AU  []byte
}

// Audio is one camera's audio transcoder. Set the fields, then Start;
// Write and Drain from one goroutine; Close when done.
type Audio struct {
	In  Input
	Out Output
	// FFmpeg is the program (default "ffmpeg" on PATH).
	FFmpeg string
	Logger *slog.Logger

	inRate, channels int
	outRate          int

	proc   *process
	anchor int64 // input pts of the process's first sample
	fed    int64 // input samples given to the process (silence included)
	drift  int64 // input samples lost and not made up (AAC)
	// lastStart is when the last process started: one that ended on its
	// own is replaced no sooner than RestartDelay after it.
	lastStart time.Time
	dropped   atomic.Uint64
	frames    atomic.Uint64

	mu   sync.Mutex
	cpu  time.Duration // of processes that ended
	runs int
}

// Start checks the input and that ffmpeg can be found. The process itself
// starts with the first Write.
func (a *Audio) Start() error {
	switch {
	case a.In.G711 != nil && a.In.AAC == nil:
		a.inRate, a.channels = max(a.In.G711.SampleRate, 1), max(a.In.G711.Channels, 1)
	case a.In.AAC != nil && a.In.G711 == nil:
		if a.In.AAC.Type != mpeg4audio.ObjectTypeAACLC {
			return fmt.Errorf("transcode: AAC object type %d: only AAC-LC is transcoded", a.In.AAC.Type)
		}
		a.inRate, a.channels = a.In.AAC.SampleRate, max(a.In.AAC.ChannelCount, 1)
	default:
		return errors.New("transcode: the input is G711 or AAC")
	}
	a.outRate = 16000
	if a.Out == OutOpus {
		a.outRate = 48000
	}
	if a.FFmpeg == "" {
		a.FFmpeg = "ffmpeg"
	}
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	p, err := exec.LookPath(a.FFmpeg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoFFmpeg, err)
	}
	a.FFmpeg = p
	return nil
}

// ClockRate is the clock of the frames' pts.
func (a *Audio) ClockRate() int { return a.outRate }

// AACConfig is the AAC the frames are (OutAAC).
func (a *Audio) AACConfig() mpeg4audio.AudioSpecificConfig {
	return mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: a.outRate, ChannelCount: min(a.channels, 2)}
}

// Write feeds one packet's audio whose first sample has pts (the input's
// clock): G.711 samples, or one AAC access unit. It never blocks.
func (a *Audio) Write(pts int64, data []byte) {
	n := a.samples(data)
	if n == 0 {
		return
	}
	if a.proc != nil && a.proc.exited() {
		// ffmpeg died (or refused its input): a new one takes over, on the
		// camera's clock, at most once per RestartDelay.
		a.Logger.Warn("audio transcoder ended, restarting", "stderr", a.proc.stderrText())
		a.stop()
	}
	if a.proc == nil && !a.lastStart.IsZero() && time.Since(a.lastStart) < RestartDelay {
		return // the audio of a transcoder that keeps failing is dropped meanwhile
	}
	if a.proc != nil {
		next := a.anchor + a.fed + a.drift
		gap := pts - next
		switch {
		case gap > int64(MaxGap/time.Second)*int64(a.inRate), gap < -int64(a.inRate):
			a.Logger.Info("audio transcoder restarts on a new timeline", "gap_samples", gap)
			a.stop()
		case gap > 0 && a.In.G711 != nil:
			a.send(silence(a.In.G711.MULaw, int(gap)*a.channels), gap)
		case gap > 0:
			// Lost AAC frames cannot be made up: the output runs early by
			// the loss until it is worth a restart.
			if a.drift += gap; a.drift > int64(MaxDrift)*int64(a.inRate)/int64(time.Second) {
				a.Logger.Info("audio transcoder restarts after lost audio", "lost_samples", a.drift)
				a.stop()
			}
		case gap < 0 && a.In.G711 != nil:
			// Overlaps what was fed (a repeated packet): keep the new tail.
			skip := min(-gap, n)
			data, pts, n = data[skip*int64(a.channels):], pts+skip, n-skip
			if n == 0 {
				return
			}
		case gap < 0:
			return // a repeated AAC frame
		}
	}
	if a.proc == nil {
		if err := a.startProcess(pts); err != nil {
			a.Logger.Warn("audio transcoder cannot start", "error", err)
			return
		}
	}
	if a.In.AAC != nil {
		data = adts(*a.In.AAC, data)
	}
	a.send(data, n)
}

// samples is how many input samples data holds.
func (a *Audio) samples(data []byte) int64 {
	if a.In.G711 != nil {
		return int64(len(data) / a.channels)
	}
	if len(data) == 0 || len(data) > mpeg4audio.MaxAccessUnitSize {
		return 0
	}
	return aacFrameSamples
}

// adts frames one AAC access unit for ffmpeg (a fresh buffer).
func adts(cfg mpeg4audio.AudioSpecificConfig, au []byte) []byte {
	b, err := mpeg4audio.ADTSPackets{{Type: cfg.Type, SampleRate: cfg.SampleRate, ChannelConfig: uint8(cfg.ChannelCount), ChannelCount: cfg.ChannelCount, AU: au}}.Marshal()
	if err != nil {
		return nil
	}
	return b
}

// send queues b (n input samples) for ffmpeg, or drops it when the queue is
// full. b is copied unless it is already the caller's own (ADTS, silence).
func (a *Audio) send(b []byte, n int64) {
	a.fed += n
	if a.In.G711 != nil {
		b = bytes.Clone(b)
	}
	select {
	case a.proc.in <- b:
	default:
		a.dropped.Add(1)
	}
}

// Drain calls fn for each frame ready now, oldest first, without waiting.
func (a *Audio) Drain(fn func(Frame)) {
	if a.proc == nil {
		return
	}
	for {
		select {
		case f := <-a.proc.out:
			a.frames.Add(1)
			fn(f)
		default:
			return
		}
	}
}

// Stats reports the frames produced, the input chunks dropped (ffmpeg did
// not keep up), the processes started and the CPU time of those that ended.
func (a *Audio) Stats() (frames, dropped uint64, runs int, cpu time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.frames.Load(), a.dropped.Load(), a.runs, a.cpu
}

// Close stops the process.
func (a *Audio) Close() { a.stop() }

func (a *Audio) stop() {
	if a.proc == nil {
		return
	}
	cpu := a.proc.close()
	a.mu.Lock()
	a.cpu += cpu
	a.mu.Unlock()
	a.proc = nil
}

func (a *Audio) startProcess(pts int64) error {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-probesize", "32", "-analyzeduration", "0", "-fflags", "+nobuffer"}
	if g := a.In.G711; g != nil {
		f := "alaw"
		if g.MULaw {
			f = "mulaw"
		}
		args = append(args, "-f", f, "-ar", strconv.Itoa(a.inRate), "-ac", strconv.Itoa(a.channels))
	} else {
		args = append(args, "-f", "aac")
	}
	args = append(args, "-i", "pipe:0", "-ar", strconv.Itoa(a.outRate), "-ac", strconv.Itoa(min(a.channels, 2)))
	if a.Out == OutOpus {
		// One 20 ms packet per Ogg page, flushed at once.
		args = append(args, "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-application", "lowdelay",
			"-f", "ogg", "-page_duration", "20000")
	} else {
		args = append(args, "-c:a", "aac", "-b:a", "32k", "-f", "adts")
	}
	args = append(args, "-flush_packets", "1", "pipe:1")
	p, err := startProcess(a.FFmpeg, args)
	if err != nil {
		return err
	}
	// Output frames start at the anchor, in the output clock.
	base := pts * int64(a.outRate) / int64(a.inRate)
	if a.Out == OutOpus {
		go p.readOgg(base, a.Logger)
	} else {
		go p.readADTS(a.AACConfig(), base-aacPriming, a.Logger)
	}
	a.proc, a.anchor, a.fed, a.drift, a.lastStart = p, pts, 0, 0, time.Now()
	a.mu.Lock()
	a.runs++
	a.mu.Unlock()
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
	stderr *limitedWriter
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
		stdout: stdout, stderr: &limitedWriter{max: 4096}, done: make(chan struct{}), read: make(chan struct{})}
	cmd.Stderr = p.stderr
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

// readOgg parses ffmpeg's Ogg Opus output (one packet per page) into
// frames until it ends. A packet's pts is where its samples start: the
// previous page's granule position less the encoder's pre-skip.
func (p *process) readOgg(base int64, log *slog.Logger) {
	defer close(p.read)
	r, head, err := oggreader.NewWith(p.stdout)
	if err != nil {
		return // ffmpeg ended before its first page
	}
	preSkip := int64(head.PreSkip)
	var last uint64
	for {
		payload, hdr, err := r.ParseNextPage()
		if err != nil {
			return
		}
		if _, isHeader := hdr.HeaderType(payload); isHeader || len(payload) == 0 {
			continue // OpusTags
		}
		g := hdr.GranulePosition
		if g <= last {
			continue
		}
		start := last
		last = g
		if g-start > opusFrameSamples {
			// Several packets on one page cannot be told apart here. (The
			// last page of a stream may be shorter: its packet is trimmed.)
			log.Warn("audio transcoder: an Ogg page with more than one 20 ms packet", "samples", g-start)
			continue
		}
		pts := base + int64(start) - preSkip
		if pts < 0 {
			continue // the encoder's pre-skip
		}
		select {
		case p.out <- Frame{PTS: pts, AU: payload}:
		default:
		}
	}
}

// exited reports whether the process's output ended (it exited).
func (p *process) exited() bool {
	select {
	case <-p.read:
		return true
	default:
		return false
	}
}

// stderrText is what the process said on stderr (its first 4 KiB).
func (p *process) stderrText() string { return p.stderr.String() }

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
	if msg := p.stderr.String(); err != nil && msg != "" {
		slog.Default().Debug("audio transcoder ended", "error", err, "stderr", msg)
	}
	if st := p.cmd.ProcessState; st != nil {
		return st.UserTime() + st.SystemTime()
	}
	return 0
}

// limitedWriter keeps the first max bytes written to it (ffmpeg's stderr,
// which exec copies from another goroutine).
type limitedWriter struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *limitedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimSpace(w.b.String())
}
