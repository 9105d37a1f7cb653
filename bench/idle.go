package main

import (
	"context"
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
)

// idleTarget starts a server with n configured, unwatched cameras and
// returns its pid, a readiness probe and its stop.
type idleTarget struct {
	name  string
	start func(ctx context.Context, dir string, n int) (pid int, ready func() bool, goroutines func() float64, stop func(), err error)
}

// runIdle measures what configured cameras cost while nobody watches or
// records them: each target is started with 1 camera and with -cameras N,
// and the difference is divided by N−1. start_ms is from the process start
// to the server answering (camgate's /readyz, mediamtx's RTSP port) with a
// fresh data folder, restart_ms the same when started again on it (camgate
// has stored its configured cameras by then).
func runIdle(ctx context.Context, e *env, o options) ([]result, error) {
	if o.cameras < 2 {
		return nil, fmt.Errorf("-cameras must be at least 2 for the idle scenario")
	}
	var res []result
	for round := 1; round <= o.rounds; round++ {
		for _, t := range []idleTarget{{"mediamtx", e.startMediamtxIdle}, {"camgate", e.startCamgateIdle}} {
			one, err := e.idleRound(ctx, o, t, 1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			many, err := e.idleRound(ctx, o, t, o.cameras)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			per := float64(o.cameras - 1)
			m := map[string]float64{
				"start_ms":                   many["start_ms"],
				"restart_ms":                 many["restart_ms"],
				"start_ms_1_camera":          one["start_ms"],
				"rss_mib":                    many["rss"] / (1 << 20),
				"rss_kib_per_camera":         (many["rss"] - one["rss"]) / 1024 / per,
				"upstream_conns":             many["conns"],
				"goroutines":                 many["goroutines"],
				"goroutines_per_100_cameras": (many["goroutines"] - one["goroutines"]) * 100 / per,
				"cpu_ms_per_s_idle":          many["cpu_ms_per_s"],
				"cpu_us_per_camera_s_idle":   (many["cpu_ms_per_s"] - one["cpu_ms_per_s"]) * 1000 / per,
			}
			if t.name == "mediamtx" {
				delete(m, "goroutines")
				delete(m, "goroutines_per_100_cameras")
			}
			res = append(res, result{Target: t.name, Round: round, Metrics: m})
		}
	}
	return res, nil
}

func (e *env) idleRound(ctx context.Context, o options, t idleTarget, n int) (map[string]float64, error) {
	dir, err := os.MkdirTemp(e.dir, "idle-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	pid, ready, goroutines, stopTarget, err := t.start(ctx, dir, n)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			stopTarget()
		}
	}()
	for !ready() {
		if time.Since(t0) > 60*time.Second {
			return nil, fmt.Errorf("not ready after 60 s with %d cameras", n)
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}
	startMs := ms(time.Since(t0))
	if err := waitCtx(ctx, o.warmup, fmt.Sprintf("%s, %d idle cameras: settling", t.name, n)); err != nil {
		return nil, err
	}
	cpu0, _ := cpuSeconds(pid)
	w0 := time.Now()
	if err := waitCtx(ctx, o.duration, fmt.Sprintf("%s, %d idle cameras", t.name, n)); err != nil {
		return nil, err
	}
	cpu1, _ := cpuSeconds(pid)
	rss, _ := rssBytes(pid)
	conns := tcpConnsTo(pid, e.originPort())
	g := goroutines()
	stopTarget()
	stopped = true
	// Started again on the same data: camgate's cameras are stored now.
	t1 := time.Now()
	_, ready, _, stopAgain, err := t.start(ctx, dir, n)
	if err != nil {
		return nil, err
	}
	defer stopAgain()
	for !ready() {
		if time.Since(t1) > 60*time.Second {
			return nil, fmt.Errorf("not ready after 60 s with %d cameras (restart)", n)
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}
	return map[string]float64{
		"restart_ms":   ms(time.Since(t1)),
		"start_ms":     startMs,
		"rss":          float64(rss),
		"conns":        float64(conns),
		"goroutines":   g,
		"cpu_ms_per_s": (cpu1 - cpu0) * 1000 / time.Since(w0).Seconds(),
	}, nil
}

func (e *env) startCamgateIdle(ctx context.Context, dir string, n int) (int, func() bool, func() float64, func(), error) {
	nd, err := e.startCamerasNode(ctx, dir, n, false)
	if err != nil {
		return 0, nil, nil, nil, err
	}
	ready := func() bool {
		res, err := http.Get(nd.http + "/readyz")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode == http.StatusOK
	}
	goroutines := func() float64 { return metricValue(nd.http+"/metrics", "go_goroutines") }
	return nd.cmd.Process.Pid, ready, goroutines, nd.stop, nil
}

func (e *env) startMediamtxIdle(ctx context.Context, dir string, n int) (int, func() bool, func() float64, func(), error) {
	port, err := freePort()
	if err != nil {
		return 0, nil, nil, nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "logLevel: warn\napi: false\nmetrics: false\npprof: false\nplayback: false\nrtmp: false\nhls: false\n"+
		"webrtc: false\nsrt: false\nmoq: false\nrtsp: true\nrtspTransports: [tcp]\nrtspAddress: 127.0.0.1:%d\npaths:\n", port)
	for i := range n {
		fmt.Fprintf(&b, "  %s: {source: \"%s/%s\", sourceOnDemand: true}\n", relayPath(i), e.originBase(), relayPath(i))
	}
	cfg := filepath.Join(dir, "mediamtx.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return 0, nil, nil, nil, err
	}
	cmd := exec.Command(e.mtxBin, cfg)
	cmd.Dir = dir
	cmd.Stderr, cmd.Stdout = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, nil, nil, nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ready := func() bool { return waitTCPOnce(addr) }
	return cmd.Process.Pid, ready, func() float64 { return 0 }, func() { stop(cmd) }, nil
}

func waitTCPOnce(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// metricValue reads one unlabelled metric from a Prometheus text page.
func metricValue(url, name string) float64 {
	res, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}

func (e *env) originPort() int {
	u := strings.TrimPrefix(e.originBase(), "rtsp://")
	_, p, _ := strings.Cut(u, ":")
	n, _ := strconv.Atoi(p)
	return n
}

// tcpConnsTo counts pid's established TCP connections to port: its socket
// inodes (/proc/PID/fd) matched against /proc/PID/net/tcp.
func tcpConnsTo(pid, port int) int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return -1
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) > 9 && f[3] == "01" && strings.HasSuffix(f[2], want) && inodes[f[9]] {
			n++
		}
	}
	return n
}
