package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxJPEGBytes bounds what a decoder (or a camera) may hand back as one
// snapshot.
const maxJPEGBytes = 16 << 20

// FFmpeg decodes keyframes to JPEG with an ffmpeg program: there is no
// well-kept pure-Go H264/H265 decoder, and ffmpeg is the decoder every
// camera stream is already tested against. Each decode is one short
// process (one thread, one frame), bounded by Timeout and by MaxConcurrent
// processes at once. Set the fields, then Initialize.
type FFmpeg struct {
	// Path is the program (default "ffmpeg", looked up on PATH). When it
	// cannot be found, Decode answers ErrNoDecoder (503) and looks again
	// at the next call, so installing ffmpeg needs no restart.
	Path string
	// Timeout bounds one decode (default 5 s).
	Timeout time.Duration
	// MaxConcurrent bounds the decodes running at once (default 2); more
	// wait for a slot, within their Timeout.
	MaxConcurrent int

	slots chan struct{}

	mu       sync.Mutex // guards resolved
	resolved string     // Path as found on PATH

	decodes atomic.Uint64
	cpuNs   atomic.Int64
}

// Initialize applies the defaults.
func (f *FFmpeg) Initialize() error {
	if f.Path == "" {
		f.Path = "ffmpeg"
	}
	if f.Timeout <= 0 {
		f.Timeout = 5 * time.Second
	}
	if f.MaxConcurrent <= 0 {
		f.MaxConcurrent = 2
	}
	f.slots = make(chan struct{}, f.MaxConcurrent)
	return nil
}

// Available reports whether the program can be found.
func (f *FFmpeg) Available() bool {
	_, err := f.program()
	return err == nil
}

func (f *FFmpeg) program() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.resolved != "" {
		return f.resolved, nil
	}
	p, err := exec.LookPath(f.Path)
	if err != nil {
		return "", fmt.Errorf("%w (looked for %q: %w)", ErrNoDecoder, f.Path, err)
	}
	f.resolved = p
	return p, nil
}

// Stats returns how many decodes ran and the CPU time (user + system)
// they used together.
func (f *FFmpeg) Stats() (decodes uint64, cpu time.Duration) {
	return f.decodes.Load(), time.Duration(f.cpuNs.Load())
}

// Decode turns one Annex-B keyframe into a JPEG.
func (f *FFmpeg) Decode(ctx context.Context, kf Keyframe) ([]byte, error) {
	prog, err := f.program()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: every decoder slot stayed busy for %v", ErrDecodeTimeout, f.Timeout)
	}
	cmd := exec.CommandContext(ctx, prog,
		"-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
		"-f", string(kf.Codec), "-i", "pipe:0",
		"-frames:v", "1", "-an", "-f", "image2", "-c:v", "mjpeg", "-q:v", "3", "pipe:1")
	cmd.Stdin = bytes.NewReader(kf.AnnexB)
	var out limitedBuffer
	var stderr limitedBuffer
	out.max, stderr.max = maxJPEGBytes, 4096
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if ps := cmd.ProcessState; ps != nil {
		f.decodes.Add(1)
		f.cpuNs.Add(int64(ps.UserTime() + ps.SystemTime()))
	}
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("%w: ffmpeg ran longer than %v", ErrDecodeTimeout, f.Timeout)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, fmt.Errorf("%w: ffmpeg: %w: %s", ErrDecode, err, strings.TrimSpace(stderr.String()))
	case out.over:
		return nil, fmt.Errorf("%w: ffmpeg wrote more than %d bytes", ErrDecode, maxJPEGBytes)
	case !isJPEG(out.Bytes()):
		return nil, fmt.Errorf("%w: ffmpeg wrote no JPEG: %s", ErrDecode, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}

// isJPEG checks the SOI marker and that the data ends with EOI.
func isJPEG(b []byte) bool {
	return len(b) >= 4 && b[0] == 0xff && b[1] == 0xd8 && b[len(b)-2] == 0xff && b[len(b)-1] == 0xd9
}

// limitedBuffer keeps at most max bytes and remembers that it had to drop
// some.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
