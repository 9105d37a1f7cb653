package transcode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// pcmFormat is ffmpeg's name of recorded PCM's raw format, "" when it
// has none. G.711 cameras' audio is recorded as 16-bit big-endian PCM,
// because fMP4 has no G.711.
func pcmFormat(c *codecs.LPCM) string {
	if c.BitDepth != 16 && c.BitDepth != 24 {
		return ""
	}
	f := "s" + strconv.Itoa(c.BitDepth) + "be"
	if c.LittleEndian {
		f = f[:len(f)-2] + "le"
	}
	return f
}

// runTimeout bounds one encoding run (from when it got its turn).
const runTimeout = 20 * time.Second

// PCMEncoder turns a recorded segment's PCM into AAC for HLS playback of
// the archive, with one ffmpeg run per segment (the archive caches the
// result): the same AAC as the live HLS gives G.711 cameras (AAC-LC,
// 16 kHz, 32 kbit/s). At most Parallel runs at once (default: a quarter of
// the CPUs, at least 1; a 10 s segment is about 0.2 s of one core), so
// that a viewer scrubbing through hours of footage cannot take the node's
// CPU from its cameras; more wait.
type PCMEncoder struct {
	// FFmpeg is the program (default "ffmpeg" on PATH).
	FFmpeg   string
	Parallel int

	sem chan struct{}
}

// Start checks that ffmpeg can be found.
func (e *PCMEncoder) Start() error {
	if e.FFmpeg == "" {
		e.FFmpeg = "ffmpeg"
	}
	p, err := exec.LookPath(e.FFmpeg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoFFmpeg, err)
	}
	e.FFmpeg = p
	if e.Parallel <= 0 {
		e.Parallel = max(runtime.NumCPU()/4, 1)
	}
	e.sem = make(chan struct{}, e.Parallel)
	return nil
}

// AACConfig is the AAC that PCM of in is encoded into; false when the
// encoder does not take it (the archive's AudioEncoder).
func (e *PCMEncoder) AACConfig(in *codecs.LPCM) (mpeg4audio.AudioSpecificConfig, bool) {
	ok := pcmFormat(in) != "" && in.SampleRate > 0 && in.ChannelCount >= 1 && in.ChannelCount <= 8
	return mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelCount: min(max(in.ChannelCount, 1), 2)}, ok
}

// EncodeAAC encodes pcm (whole samples of in, channels interleaved) into
// AAC access units of 1024 samples at AACConfig's rate. Unit k holds the
// output samples from k×1024 on: the encoder's priming is removed, so the
// first unit starts with the first input sample and the units cover the
// input (the last one padded with silence).
func (e *PCMEncoder) EncodeAAC(ctx context.Context, in *codecs.LPCM, pcm []byte) ([][]byte, error) {
	cfg, ok := e.AACConfig(in)
	if !ok {
		return nil, fmt.Errorf("transcode: cannot encode %d-bit PCM of %d channels at %d Hz", in.BitDepth, in.ChannelCount, in.SampleRate)
	}
	select {
	case e.sem <- struct{}{}:
		defer func() { <-e.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.FFmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", pcmFormat(in), "-ar", strconv.Itoa(in.SampleRate), "-ac", strconv.Itoa(in.ChannelCount), "-i", "pipe:0",
		"-ar", strconv.Itoa(cfg.SampleRate), "-ac", strconv.Itoa(cfg.ChannelCount),
		"-c:a", "aac", "-b:a", "32k", "-f", "adts", "pipe:1")
	cmd.Stdin = bytes.NewReader(pcm)
	var out bytes.Buffer
	stderr := &limitedWriter{max: 4096}
	cmd.Stdout, cmd.Stderr = &out, stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("transcode: ffmpeg: %w: %s", err, stderr.String())
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(out.Bytes()); err != nil {
		return nil, fmt.Errorf("transcode: ffmpeg's ADTS: %w", err)
	}
	if len(pkts) == 0 {
		return nil, errors.New("transcode: ffmpeg encoded nothing")
	}
	aus := make([][]byte, 0, len(pkts)-1)
	for _, p := range pkts[1:] { // the first unit is the encoder's priming (aacPriming)
		if p.SampleRate != cfg.SampleRate || p.ChannelCount != cfg.ChannelCount {
			return nil, fmt.Errorf("transcode: ffmpeg's AAC is %d Hz, %d channels, not what was asked", p.SampleRate, p.ChannelCount)
		}
		aus = append(aus, p.AU)
	}
	return aus, nil
}
