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
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/camgate/camgate/authz/token"
	"github.com/camgate/camgate/gateway/config"
)

const (
	benchSecret   = "bench-secret-0123456789abcdef-0123456789"
	benchAdminKey = "cg_admin_bench_0123456789"
)

// env is the running set-up shared by every scenario: mediamtx as the origin
// (and as the comparison target), ffmpeg publishing into it, camgate pulling
// it — and, with -redis, a redis-server and a second camgate node sharing it.
type env struct {
	dir       string
	mtxBin    string
	mediamtx  *exec.Cmd
	ffmpeg    *exec.Cmd
	redis     *exec.Cmd
	camBin    string
	nodes     []*node // camgate processes: [0] is "A", [1] (with -redis) is "B"
	originURL string  // rtsp://…/cam on mediamtx
	camURL    string  // rtsp://…/cam on camgate, with a viewer token
	token     string  // viewer token of subject "bench" (live, sound, archive, download)
	clip      string
	hlsMtx    string // http://…/cam/index.m3u8 on mediamtx (needs.hls)
	hlsCam    string // http://…/hls/cam/index.m3u8?token=… on camgate
	whepMtx   string // http://…/cam/whep on mediamtx (needs.whep)
	whepCam   string // http://…/whep/cam on camgate (bearer: token)
	apiMtx    string // http://… of mediamtx's API (needs.api)
	pprof     bool   // camgate is built with pprof (-pprof)
}

// node is one camgate process.
type node struct {
	name    string
	cmd     *exec.Cmd
	dataDir string
	rtsp    string // 127.0.0.1:port
	http    string // http://127.0.0.1:port
	exited  chan struct{}
	closing atomic.Bool
}

// watch reports a node that exits while the bench still needs it (a crash,
// or a signal from elsewhere), with its exit status, so a client error that
// follows ("connection refused") is not the only trace.
func (n *node) watch() {
	err := n.cmd.Wait()
	if !n.closing.Load() {
		step("camgate %s exited during the run: %v (%s)", n.name, err, n.cmd.ProcessState)
	}
	close(n.exited)
}

// stop interrupts the node and kills it if it does not exit in 5 s.
func (n *node) stop() {
	n.closing.Store(true)
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.exited:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// target is one server under test.
type target struct {
	name string
	pid  int
	url  string
}

func (e *env) camgate() *node { return e.nodes[0] }

func (e *env) targets() []target {
	return []target{
		{"mediamtx", e.mediamtx.Process.Pid, e.originURL},
		{"camgate", e.camgate().cmd.Process.Pid, e.camURL},
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

func newEnv(ctx context.Context, o options, need needs) (*env, error) {
	dir, err := os.MkdirTemp("", "camgate-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, pprof: o.pprof != ""}
	if err := e.start(ctx, o, need); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) start(ctx context.Context, o options, need needs) error {
	e.mtxBin = o.mediamtx
	if e.mtxBin == "" {
		step("building mediamtx (../shared/tools/build-mediamtx; cached after the first time)")
		out, err := exec.CommandContext(ctx, "../shared/tools/build-mediamtx").Output()
		if err != nil {
			return fmt.Errorf("build-mediamtx: %w (pass -mediamtx PATH)", err)
		}
		e.mtxBin = strings.TrimSpace(string(out))
	}
	e.clip = filepath.Join(e.dir, "clip.mp4")
	step("encoding a 10 s 720p clip at %s (H264 baseline, GOP 2 s, Opus)", o.bitrate)
	enc := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "10",
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-b:v", o.bitrate, "-maxrate", o.bitrate,
		"-bufsize", o.bitrate, "-g", "50", "-bf", "0", "-c:a", "libopus", "-b:a", "64k", e.clip)
	if out, err := enc.CombinedOutput(); err != nil {
		return fmt.Errorf("ffmpeg encode: %w: %s", err, out)
	}
	mport, err := freePort()
	if err != nil {
		return err
	}
	e.originURL = fmt.Sprintf("rtsp://127.0.0.1:%d/cam", mport)
	cfg, err := e.mediamtxConfig(mport, need, ttffMuxerCloseAfter(o))
	if err != nil {
		return err
	}
	if err := e.startMediamtx(ctx, cfg); err != nil {
		return err
	}
	if need.ownNodes {
		return e.buildCamgate(ctx)
	}
	if err := e.startCamgate(ctx, need); err != nil {
		return err
	}
	return e.waitStream(ctx)
}

// mediamtxConfig serves RTSP over TCP, plus HLS or WebRTC (on free
// loopback ports) only for the scenarios comparing them. hlsCloseAfter,
// when set, turns HLS on with that hlsMuxerCloseAfter (ttff's hls-cold).
func (e *env) mediamtxConfig(rtspPort int, need needs, hlsCloseAfter time.Duration) (string, error) {
	api := "api: false\n"
	if need.api {
		p, err := freePort()
		if err != nil {
			return "", err
		}
		api = fmt.Sprintf("api: true\napiAddress: 127.0.0.1:%d\n", p)
		e.apiMtx = fmt.Sprintf("http://127.0.0.1:%d", p)
	}
	cfg := api + fmt.Sprintf(`logLevel: warn
metrics: false
pprof: false
playback: false
rtmp: false
srt: false
moq: false
rtsp: true
rtspTransports: [tcp]
rtspAddress: 127.0.0.1:%d
`, rtspPort)
	if need.hls || hlsCloseAfter > 0 {
		p, err := freePort()
		if err != nil {
			return "", err
		}
		cfg += fmt.Sprintf("hls: true\nhlsAddress: 127.0.0.1:%d\n", p)
		if hlsCloseAfter > 0 {
			cfg += fmt.Sprintf("hlsMuxerCloseAfter: %s\n", hlsCloseAfter)
		}
		e.hlsMtx = fmt.Sprintf("http://127.0.0.1:%d/cam/index.m3u8", p)
	} else {
		cfg += "hls: false\n"
	}
	if need.whep {
		p, err := freePort()
		if err != nil {
			return "", err
		}
		u, err := freeUDPPort()
		if err != nil {
			return "", err
		}
		cfg += fmt.Sprintf("webrtc: true\nwebrtcAddress: 127.0.0.1:%d\nwebrtcLocalUDPAddress: 127.0.0.1:%d\n"+
			"webrtcIPsFromInterfaces: false\nwebrtcAdditionalHosts: [127.0.0.1]\n", p, u)
		e.whepMtx = fmt.Sprintf("http://127.0.0.1:%d/cam/whep", p)
	} else {
		cfg += "webrtc: false\n"
	}
	cfg += "paths:\n  cam: {}\n"
	if need.ownNodes {
		// rec<N>: relays of cam, pulled from this server only while read.
		cfg += fmt.Sprintf("  \"~^rec[0-9]+$\": {source: \"rtsp://127.0.0.1:%d/cam\", sourceOnDemand: true, "+
			"sourceOnDemandCloseAfter: 2s, rtspTransport: tcp}\n", rtspPort)
	}
	return cfg, nil
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// startMediamtx starts mediamtx with cfg and ffmpeg publishing into it.
func (e *env) startMediamtx(ctx context.Context, cfg string) error {
	cfgPath := filepath.Join(e.dir, "mediamtx.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	u, _ := strings.CutPrefix(e.originURL, "rtsp://")
	addr, _, _ := strings.Cut(u, "/")
	step("starting mediamtx on %s", addr)
	e.mediamtx = exec.Command(e.mtxBin, cfgPath)
	e.mediamtx.Dir = e.dir // it writes generated certificates into its working directory
	e.mediamtx.Stderr, e.mediamtx.Stdout = os.Stderr, os.Stderr
	if err := e.mediamtx.Start(); err != nil {
		return err
	}
	if err := waitTCP(ctx, addr); err != nil {
		return fmt.Errorf("mediamtx: %w", err)
	}
	step("publishing the clip in a loop with ffmpeg")
	e.ffmpeg = exec.Command("ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", e.clip, "-c", "copy",
		"-f", "rtsp", "-rtsp_transport", "tcp", e.originURL)
	e.ffmpeg.Stderr = os.Stderr
	return e.ffmpeg.Start()
}

// waitStream waits until a reader of camgate's camera receives a keyframe,
// so no scenario measures the upstream's start-up.
func (e *env) waitStream(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := dial(e.camURL)
		if err == nil {
			select {
			case <-r.firstKF:
				r.c.Close()
				return nil
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
			}
			r.c.Close()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("camgate's camera does not play: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// buildCamgate builds ./cmd/camgate into the bench's folder.
func (e *env) buildCamgate(ctx context.Context) error {
	// Not named "camgate": a broad `pkill camgate` elsewhere on a shared
	// machine must not end the node under test mid-run (it happened).
	e.camBin = filepath.Join(e.dir, "cg-bench-node")
	step("building camgate")
	args := []string{"build", "-o", e.camBin}
	if e.pprof {
		args = append(args, "-tags", "camgate_pprof")
	}
	if out, err := exec.CommandContext(ctx, "go", append(args, "./cmd/camgate")...).CombinedOutput(); err != nil {
		return fmt.Errorf("go build (run the bench from the repository root): %w: %s", err, out)
	}
	return nil
}

func (e *env) startCamgate(ctx context.Context, need needs) error {
	if err := e.buildCamgate(ctx); err != nil {
		return err
	}
	var extra []string
	if need.record {
		extra = append(extra, "CAMGATE_ARCHIVE_SEGMENT_DURATION="+need.segment.String())
	}
	nodes := 1
	if need.redis {
		url, err := e.startRedis(ctx)
		if err != nil {
			return err
		}
		extra = append(extra, "CAMGATE_REDIS_URL="+url)
		nodes = 2
	}
	for i := range nodes {
		n, err := e.startNode(ctx, string(rune('A'+i)), need.record, extra)
		if err != nil {
			return err
		}
		e.nodes = append(e.nodes, n)
	}
	// With a shared store node B already has these from node A; PUT is idempotent.
	actions := `["live","sound","archive","download"]`
	if err := e.camgate().apiOK(ctx, http.MethodPut, "/subjects/bench", `{"kind":"user"}`); err != nil {
		return err
	}
	if err := e.camgate().apiOK(ctx, http.MethodPut, "/grants/bench",
		`{"subject":"bench","device":"cam","actions":`+actions+`}`); err != nil {
		return err
	}
	tok, err := token.MintHS256([]byte(benchSecret), "bench", 24*time.Hour, time.Now())
	if err != nil {
		return err
	}
	e.token = tok
	e.camURL = fmt.Sprintf("rtsp://%s/cam?token=%s", e.camgate().rtsp, tok)
	e.hlsCam = e.camgate().http + "/hls/cam/index.m3u8?token=" + tok
	e.whepCam = e.camgate().http + "/whep/cam"
	return nil
}

// startNode starts one camgate process with its own data folder and ports
// and the bench's camera "cam".
func (e *env) startNode(ctx context.Context, name string, record bool, extra []string) (*node, error) {
	extra = append([]string{fmt.Sprintf(`CAMGATE_CAMERAS=[{id: cam, site: bench, source: "%s", record: %t}]`, e.originURL, record)}, extra...)
	return e.startNodeConfig(ctx, name, filepath.Join(e.dir, "data-"+name), "", extra)
}

// startNodeConfig starts one camgate process with its own ports, dataDir,
// the configuration file cfg (none when empty) and extra variables.
func (e *env) startNodeConfig(ctx context.Context, name, dataDir, cfg string, extra []string) (*node, error) {
	rport, err := freePort()
	if err != nil {
		return nil, err
	}
	hport, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &node{name: name, dataDir: dataDir,
		rtsp: fmt.Sprintf("127.0.0.1:%d", rport), http: fmt.Sprintf("http://127.0.0.1:%d", hport)}
	args := []string{"serve"}
	if cfg != "" {
		args = append(args, "--config", cfg)
	}
	n.cmd = exec.Command(e.camBin, args...)
	n.cmd.Env = append(os.Environ(),
		"CAMGATE_DATA_DIR="+n.dataDir,
		"CAMGATE_PUBLIC_URL="+n.http,
		"CAMGATE_RTSP_LISTEN="+n.rtsp,
		"CAMGATE_RTSP_UDP_RTP_LISTEN=", "CAMGATE_RTSP_UDP_RTCP_LISTEN=",
		fmt.Sprintf("CAMGATE_HTTP_LISTEN=127.0.0.1:%d", hport),
		"CAMGATE_LOG_LEVEL=warn",
		"CAMGATE_AUTH_VIEWER_JWT_HS256_SECRET="+benchSecret,
		"CAMGATE_AUTH_ADMIN_KEYS="+benchAdminKey,
	)
	if slices.Contains(config.EnvNames(), "CAMGATE_WEBRTC_UDP_MUX_LISTEN") {
		// The default :8189 would collide with the other node and with
		// whatever else runs on this machine.
		u, err := freeUDPPort()
		if err != nil {
			return nil, err
		}
		n.cmd.Env = append(n.cmd.Env, fmt.Sprintf("CAMGATE_WEBRTC_UDP_MUX_LISTEN=127.0.0.1:%d", u),
			"CAMGATE_WEBRTC_INCLUDE_LOOPBACK=true")
	}
	n.cmd.Env = append(n.cmd.Env, extra...)
	n.cmd.Stderr = os.Stderr
	step("starting camgate %s on %s (http %s)", name, n.rtsp, n.http)
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	n.exited = make(chan struct{})
	go n.watch()
	if err := waitTCP(ctx, strings.TrimPrefix(n.http, "http://")); err != nil {
		n.stop()
		return nil, fmt.Errorf("camgate %s: %w", name, err)
	}
	return n, nil
}

// startRedis starts a throw-away redis-server on a free port.
func (e *env) startRedis(ctx context.Context) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	step("starting redis-server on :%d", port)
	e.redis = exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", e.dir)
	e.redis.Stdout = io.Discard
	e.redis.Stderr = os.Stderr
	if err := e.redis.Start(); err != nil {
		return "", fmt.Errorf("redis-server: %w", err)
	}
	if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		return "", fmt.Errorf("redis-server: %w", err)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port), nil
}

// api calls camgate's admin API and returns the status and body.
func (n *node) api(ctx context.Context, method, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, n.http+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+benchAdminKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// apiOK is api for calls that must succeed.
func (n *node) apiOK(ctx context.Context, method, path, body string) error {
	code, b, err := n.api(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("camgate %s API %s %s: %w", n.name, method, path, err)
	}
	if code/100 != 2 {
		return fmt.Errorf("camgate %s API %s %s: %d %s", n.name, method, path, code, bytes.TrimSpace(b))
	}
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

// stop interrupts a child process and kills it if it does not exit in 5 s.
func stop(c *exec.Cmd) {
	if c == nil || c.Process == nil {
		return
	}
	_ = c.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
}

func (e *env) close() {
	for _, n := range e.nodes {
		n.stop()
	}
	for _, c := range []*exec.Cmd{e.redis, e.ffmpeg, e.mediamtx} {
		stop(c)
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

// procStatusKiB returns a kB field of /proc/PID/status ("VmHWM:").
func procStatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb, nil
		}
	}
	return 0, fmt.Errorf("no %s", field)
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
	res, err := http.Get(e.camgate().http + "/metrics")
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
