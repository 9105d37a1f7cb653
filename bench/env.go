package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/camgate/camgate/authz/token"
)

const (
	benchSecret   = "bench-secret-0123456789abcdef-0123456789"
	benchAdminKey = "cg_admin_bench_0123456789"
)

// env is the running set-up shared by every scenario: mediamtx as the origin
// (and as the comparison target), ffmpeg publishing into it, camgate pulling it.
type env struct {
	dir       string
	mediamtx  *exec.Cmd
	ffmpeg    *exec.Cmd
	camgate   *exec.Cmd
	originURL string // rtsp://…/cam on mediamtx
	camURL    string // rtsp://…/cam on camgate, with a viewer token
	metrics   string // camgate's /metrics URL
}

// target is one server under test.
type target struct {
	name string
	pid  int
	url  string
}

func (e *env) targets() []target {
	return []target{
		{"mediamtx", e.mediamtx.Process.Pid, e.originURL},
		{"camgate", e.camgate.Process.Pid, e.camURL},
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func step(format string, args ...any) { fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...) }

func newEnv(ctx context.Context, o options) (*env, error) {
	dir, err := os.MkdirTemp("", "camgate-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	if err := e.start(ctx, o); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) start(ctx context.Context, o options) error {
	mtx := o.mediamtx
	if mtx == "" {
		step("building mediamtx (../shared/tools/build-mediamtx; cached after the first time)")
		out, err := exec.CommandContext(ctx, "../shared/tools/build-mediamtx").Output()
		if err != nil {
			return fmt.Errorf("build-mediamtx: %w (pass -mediamtx PATH)", err)
		}
		mtx = strings.TrimSpace(string(out))
	}
	clip := filepath.Join(e.dir, "clip.mp4")
	step("encoding a 10 s 720p clip at %s (H264 baseline, GOP 2 s, Opus)", o.bitrate)
	enc := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "10",
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-b:v", o.bitrate, "-maxrate", o.bitrate,
		"-bufsize", o.bitrate, "-g", "50", "-bf", "0", "-c:a", "libopus", "-b:a", "64k", clip)
	if out, err := enc.CombinedOutput(); err != nil {
		return fmt.Errorf("ffmpeg encode: %w: %s", err, out)
	}

	mport, err := freePort()
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`logLevel: warn
api: false
metrics: false
pprof: false
playback: false
rtmp: false
hls: false
webrtc: false
srt: false
rtsp: true
rtspTransports: [tcp]
rtspAddress: 127.0.0.1:%d
paths:
  cam: {}
`, mport)
	cfgPath := filepath.Join(e.dir, "mediamtx.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	step("starting mediamtx on :%d", mport)
	e.mediamtx = exec.Command(mtx, cfgPath)
	e.mediamtx.Dir = e.dir // it writes generated certificates into its working directory
	e.mediamtx.Stderr, e.mediamtx.Stdout = os.Stderr, os.Stderr
	if err := e.mediamtx.Start(); err != nil {
		return err
	}
	e.originURL = fmt.Sprintf("rtsp://127.0.0.1:%d/cam", mport)
	if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", mport)); err != nil {
		return fmt.Errorf("mediamtx: %w", err)
	}
	step("publishing the clip in a loop with ffmpeg")
	e.ffmpeg = exec.Command("ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", clip, "-c", "copy",
		"-f", "rtsp", "-rtsp_transport", "tcp", e.originURL)
	e.ffmpeg.Stderr = os.Stderr
	if err := e.ffmpeg.Start(); err != nil {
		return err
	}
	return e.startCamgate(ctx)
}

func (e *env) startCamgate(ctx context.Context) error {
	bin := filepath.Join(e.dir, "camgate")
	step("building camgate")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/camgate").CombinedOutput(); err != nil {
		return fmt.Errorf("go build (run the bench from the repository root): %w: %s", err, out)
	}
	rport, err := freePort()
	if err != nil {
		return err
	}
	hport, err := freePort()
	if err != nil {
		return err
	}
	e.camgate = exec.Command(bin, "serve")
	e.camgate.Env = append(os.Environ(),
		"CAMGATE_DATA_DIR="+filepath.Join(e.dir, "data"),
		fmt.Sprintf("CAMGATE_RTSP_LISTEN=127.0.0.1:%d", rport),
		"CAMGATE_RTSP_UDP_RTP_LISTEN=", "CAMGATE_RTSP_UDP_RTCP_LISTEN=",
		fmt.Sprintf("CAMGATE_HTTP_LISTEN=127.0.0.1:%d", hport),
		"CAMGATE_LOG_LEVEL=warn",
		"CAMGATE_AUTH_VIEWER_JWT_HS256_SECRET="+benchSecret,
		"CAMGATE_AUTH_ADMIN_KEYS="+benchAdminKey,
		fmt.Sprintf(`CAMGATE_CAMERAS=[{id: cam, site: bench, source: "%s"}]`, e.originURL),
	)
	e.camgate.Stderr = os.Stderr
	step("starting camgate on :%d (http :%d)", rport, hport)
	if err := e.camgate.Start(); err != nil {
		return err
	}
	if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", hport)); err != nil {
		return fmt.Errorf("camgate: %w", err)
	}
	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1", hport)
	e.metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", hport)
	for _, w := range [][2]string{
		{"/subjects/bench", `{"kind":"user"}`},
		{"/grants/bench", `{"subject":"bench","device":"cam","actions":["live","sound"]}`},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, api+w[0], bytes.NewBufferString(w[1]))
		req.Header.Set("Authorization", "Bearer "+benchAdminKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			return fmt.Errorf("camgate API PUT %s: %s", w[0], res.Status)
		}
	}
	tok, err := token.MintHS256([]byte(benchSecret), "bench", 24*time.Hour, time.Now())
	if err != nil {
		return err
	}
	e.camURL = fmt.Sprintf("rtsp://127.0.0.1:%d/cam?token=%s", rport, tok)
	return nil
}

func waitTCP(ctx context.Context, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not listening: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) close() {
	for _, c := range []*exec.Cmd{e.camgate, e.ffmpeg, e.mediamtx} {
		if c != nil && c.Process != nil {
			_ = c.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = c.Process.Kill()
			}
		}
	}
	os.RemoveAll(e.dir)
}

// cpuSeconds returns the process's user+system CPU time.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may contain spaces) start after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

// rssBytes returns the process's resident set size.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmRSS")
}

// camgateDropped reads camgate's count of packets lost by slow readers.
func (e *env) camgateDropped() float64 {
	res, err := http.Get(e.metrics)
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	total := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "camgate_dropped_packets_total{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	return total
}
