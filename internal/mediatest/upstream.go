package mediatest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/pion/rtp"
)

// Upstream is a camera stand-in (after gortsplib's examples/server): an
// RTSP server on 127.0.0.1 that one publisher (ffmpeg, see Publish) records
// into and any number of readers (camgate's source) pull from at URL.
// Closing the publisher's session closes the stream, which disconnects the
// readers. With RequireCredentials, readers must authenticate as a camera
// does: the server challenges Basic and Digest (gortsplib's defaults) and
// checks either.
type Upstream struct {
	srv       *gortsplib.Server
	mu        sync.Mutex // guards stream, publisher, readUser, readPass
	stream    *gortsplib.ServerStream
	publisher *gortsplib.ServerSession
	recording chan struct{}
	once      sync.Once
	// When set, readers must authenticate with these.
	readUser, readPass string
	// readers are the sessions playing now; plays counts every PLAY.
	readers map[*gortsplib.ServerSession]struct{}
	plays   int
	lowest  int // fewest readers since the last LowestReaders
}

// Readers is how many sessions are reading (playing) the stream now: what
// a camera counts against its connection limit.
func (u *Upstream) Readers() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.readers)
}

// LowestReaders is the fewest sessions that read the stream at any moment
// since the last call (or the start), counted at every reader that left;
// the mark starts again from the readers now. A camera moved
// make-before-break between two readers never drops to 0.
func (u *Upstream) LowestReaders() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	low := u.lowest
	u.lowest = len(u.readers)
	return low
}

// Plays is how many times a reader has started playing, since the start.
func (u *Upstream) Plays() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.plays
}

// RequireCredentials makes the server answer 401 to readers (DESCRIBE,
// SETUP) that do not present user and pass, with Basic or Digest.
func (u *Upstream) RequireCredentials(user, pass string) {
	u.mu.Lock()
	u.readUser, u.readPass = user, pass
	u.mu.Unlock()
}

// authorized is called with mu held.
func (u *Upstream) authorized(conn *gortsplib.ServerConn, req *base.Request) bool {
	return u.readUser == "" || conn.VerifyCredentials(req, u.readUser, u.readPass)
}

// StartUpstream starts an Upstream, stopped when the test ends. methods
// are the schemes it challenges readers with once RequireCredentials is
// set (default Basic and MD5 Digest, gortsplib's).
func StartUpstream(t testing.TB, methods ...auth.VerifyMethod) *Upstream {
	t.Helper()
	u := &Upstream{recording: make(chan struct{})}
	u.srv = &gortsplib.Server{Handler: u, RTSPAddress: "127.0.0.1:0", AuthMethods: methods}
	if err := u.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.srv.Close)
	return u
}

// StartUpstreamUDP is StartUpstream whose readers may also take the media
// over UDP (RTP and RTCP on an even/odd port pair of 127.0.0.1), as a
// camera offers it.
func StartUpstreamUDP(t testing.TB) *Upstream {
	t.Helper()
	u := &Upstream{recording: make(chan struct{})}
	var err error
	// gortsplib wants the pair given; try pairs from a random even base
	// until one is free.
	base := 20000 + 2*rand.IntN(10000)
	for i := range 50 {
		port := base + 2*i
		// A deep write queue: frames of a high-bitrate clip leave whole,
		// so what readers lose is lost on their side of the network.
		u.srv = &gortsplib.Server{Handler: u, RTSPAddress: "127.0.0.1:0", WriteQueueSize: 8192,
			UDPRTPAddress: fmt.Sprintf("127.0.0.1:%d", port), UDPRTCPAddress: fmt.Sprintf("127.0.0.1:%d", port+1)}
		if err = u.srv.Start(); err == nil {
			t.Cleanup(u.srv.Close)
			return u
		}
	}
	t.Fatalf("no free UDP port pair for the upstream: %v", err)
	return nil
}

// URL is where the camera is pulled from.
func (u *Upstream) URL() string { return u.URLWith("") }

// URLWith is URL with userinfo ("user:pass@") before the host.
func (u *Upstream) URLWith(userinfo string) string {
	return fmt.Sprintf("rtsp://%s%s/up", userinfo, u.srv.NetListener().Addr())
}

// Close stops the server (a camera that went away: nothing listens at URL
// any more).
func (u *Upstream) Close() { u.srv.Close() }

// Serve makes the server serve desc as a publisher's stream, for a
// publisher written in Go (a source under test republished to players):
// the caller writes packets to the returned stream.
func (u *Upstream) Serve(desc *description.Session) (*gortsplib.ServerStream, error) {
	st := &gortsplib.ServerStream{Server: u.srv, Desc: desc}
	if err := st.Initialize(); err != nil {
		return nil, err
	}
	u.mu.Lock()
	u.stream = st
	u.mu.Unlock()
	return st, nil
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (u *Upstream) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.readers[ctx.Session]; ok {
		delete(u.readers, ctx.Session)
		u.lowest = min(u.lowest, len(u.readers))
	}
	if u.stream != nil && ctx.Session == u.publisher {
		u.stream.Close()
		u.stream = nil
	}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (u *Upstream) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	if u.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, u.stream, nil
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce.
func (u *Upstream) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.stream != nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	st := &gortsplib.ServerStream{Server: u.srv, Desc: ctx.Description}
	if err := st.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, err
	}
	u.stream, u.publisher = st, ctx.Session
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (u *Upstream) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	if u.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, u.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (u *Upstream) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	u.mu.Lock()
	if u.readers == nil {
		u.readers = map[*gortsplib.ServerSession]struct{}{}
	}
	u.readers[ctx.Session] = struct{}{}
	u.plays++
	u.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord.
func (u *Upstream) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	u.mu.Lock()
	st := u.stream
	u.mu.Unlock()
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		_ = st.WritePacketRTP(medi, pkt) // fails only once the stream is closed
	})
	u.once.Do(func() { close(u.recording) })
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// Clip is a camera row: a video encoded once per test into a small file
// (EncodeArgs are ffmpeg's video encoder options) and an audio codec encoded
// live while publishing (cheap; "" for no audio).
type Clip struct {
	Name       string
	Video      []string // e.g. "-c:v", "libx264", "-bf", "0"
	Ext        string   // container of the encoded clip, e.g. "mkv"
	AudioCodec string   // ffmpeg encoder: "aac", "pcm_alaw", "pcm_mulaw", "libopus", ""
	// KeyInterval is the seconds between keyframes (default 1); the clip
	// lasts 2 s or one interval, whichever is longer, so a looped clip
	// keeps it. NVR cameras send 10 s and more.
	KeyInterval int
	// Beep adds a 40 ms beep (1760 Hz over the 440 Hz tone) at every whole
	// second of the audio, when the video has a keyframe: lip sync can be
	// measured at the far end (the audio's beeps fall on the video's
	// keyframes).
	Beep bool
}

// NoisyClip is a camera of about 9 Mbit/s, H264 without audio: 640x360 of
// noise, which no encoder shrinks, so every frame is ~45 KB (~33 RTP
// packets sent back to back) and the keyframe, every second, ~117 KB; a
// GOP is ~850 packets. For tests of packet loss and pacing.
func NoisyClip() Clip {
	return Clip{Name: "noisy", Ext: "mkv", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0",
		"-vf", "scale=640:360,noise=alls=20:allf=t", "-crf", "27"}}
}

// Publish encodes clip once (320x240, 2 s or KeyInterval) and starts ffmpeg publishing it
// in a loop with -c:v copy to u; it returns once ffmpeg records. ffmpeg is
// stopped when the test ends, or earlier by stop (the camera's stream ends;
// its readers are disconnected).
func Publish(t testing.TB, u *Upstream, clip Clip) (stop func()) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is required: apt-get install -y ffmpeg (or run scripts/test)")
	}
	file := filepath.Join(t.TempDir(), clip.Name+"."+clip.Ext)
	key := max(clip.KeyInterval, 1)
	enc := append([]string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
		fmt.Sprintf("testsrc2=size=320x240:rate=25:duration=%d", max(key, 2))}, clip.Video...)
	enc = append(enc, "-g", strconv.Itoa(25*key), file)
	if out, err := exec.Command("ffmpeg", enc...).CombinedOutput(); err != nil {
		t.Fatalf("encoding %s: %v: %s", clip.Name, err, out)
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", file}
	if clip.AudioCodec != "" {
		// 20 ms frames, as cameras packetize G.711 (lavfi's default, 128 ms
		// frames generated ahead of time, would be sent at their first
		// sample, which no live capture can do).
		sine := "sine=sample_rate=8000:samples_per_frame=160"
		if clip.Beep {
			sine += ":beep_factor=4"
		}
		args = append(args, "-f", "lavfi", "-i", sine, "-map", "0:v", "-map", "1:a",
			"-c:a", clip.AudioCodec)
		if clip.AudioCodec == "aac" || clip.AudioCodec == "libopus" {
			args = append(args, "-ar", "48000")
		}
	}
	args = append(args, "-c:v", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", u.URL())
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() { cancel(); <-exited }
	t.Cleanup(stop)
	select {
	case <-u.recording:
	case <-exited:
		t.Fatalf("ffmpeg exited before publishing %s: %s", clip.Name, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("ffmpeg did not publish %s within 15s: %s", clip.Name, stderr.String())
	}
	return stop
}
