package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// runHLSSegment measures what one HLS segment request costs: N keep-alive
// clients fetch camgate's newest finished segment back to back (each request
// authorized against the HLS session's cached decision), the same bytes as a
// static file from nginx (Debian's nginx, one worker, sendfile), the issue's
// yardstick for CPU per 64 KB segment, and from a bare fasthttp server (this
// binary again: camgate's HTTP stack without camgate's code), the floor of
// that stack.
func runHLSSegment(ctx context.Context, e *env, o options) ([]result, error) {
	if err := waitHLSReady(ctx, e.hlsCam); err != nil {
		return nil, err
	}
	v := newHLSViewer(e.hlsCam, &hlsStats{})
	if err := v.start(ctx); err != nil {
		return nil, err
	}
	var current atomic.Pointer[string]
	for deadline := time.Now().Add(20 * time.Second); ; { // until two real segments are listed
		err := refreshSegment(ctx, v, &current)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(250 * time.Millisecond)
	}
	body, err := v.get(ctx, *current.Load(), true)
	if err != nil {
		return nil, err
	}
	ctype := "video/mp4"
	nginx, err := e.startNginx(ctx, body)
	if err != nil {
		return nil, err
	}
	defer stop(nginx.cmd)
	bare, err := e.startBareFastHTTP(ctx, body)
	if err != nil {
		return nil, err
	}
	defer stop(bare.cmd)
	step("segment of %d bytes; nginx serves a copy at %s, a bare fasthttp server at %s", len(body), nginx.url, bare.url)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // camgate's segments roll out of the playlist: follow the newest
		for rctx.Err() == nil {
			_ = refreshSegment(rctx, v, &current)
			select {
			case <-rctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	tr := &http.Transport{MaxIdleConnsPerHost: o.readers, DisableCompression: true}
	camClient := &http.Client{Jar: v.client.Jar, Transport: tr}
	plain := &http.Client{Transport: tr}
	camPid := e.camgate().cmd.Process.Pid
	var res []result
	for round := 1; round <= o.rounds; round++ {
		for _, t := range []struct {
			name  string
			cpu   func() (float64, error)
			fetch func(context.Context) (int64, error)
		}{
			{"nginx", nginx.cpu, func(ctx context.Context) (int64, error) { return download(ctx, plain, nginx.url, ctype) }},
			{"fasthttp", func() (float64, error) { return cpuSeconds(bare.cmd.Process.Pid) },
				func(ctx context.Context) (int64, error) { return download(ctx, plain, bare.url, ctype) }},
			{"camgate", func() (float64, error) { return cpuSeconds(camPid) },
				func(ctx context.Context) (int64, error) { return download(ctx, camClient, *current.Load(), ctype) }},
		} {
			label := fmt.Sprintf("%s round %d/%d, %d clients", t.name, round, o.rounds, o.readers)
			m, err := transferLoad(ctx, t.cpu, o.readers, o.duration, label, t.fetch)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			idle, err := idleCores(ctx, t.cpu)
			if err != nil {
				return nil, err
			}
			// Net of what the server burns without these requests (camgate:
			// its upstream pull and the HLS muxer).
			perXfer := (m["cpu_cores"] - idle) * 1e6 / max(m["transfers_per_s"], 1e-9)
			m["cpu_idle_cores"] = idle
			m["net_cpu_us_per_xfer"] = perXfer
			m["net_cpu_us_per_64kib"] = perXfer * 65536 / float64(len(body))
			m["segment_kib"] = float64(len(body)) / 1024
			res = append(res, result{Target: t.name, Round: round, Metrics: m})
		}
	}
	return res, nil
}

// idleCores measures a server's CPU use without load, over 2 s.
func idleCores(ctx context.Context, cpu func() (float64, error)) (float64, error) {
	c0, err := cpu()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	c1, err := cpu()
	return (c1 - c0) / time.Since(t0).Seconds(), err
}

// refreshSegment stores the URL of the newest finished segment the media
// playlist lists (the one before last: the last may still be growing).
func refreshSegment(ctx context.Context, v *hlsViewer, current *atomic.Pointer[string]) error {
	b, err := v.get(ctx, v.media.String(), false)
	if err != nil {
		return err
	}
	segs := playlistURIs(b)
	if len(segs) < 2 {
		return errors.New("HLS playlist lists fewer than 2 segments")
	}
	u, err := v.media.Parse(segs[len(segs)-2])
	if err != nil {
		return err
	}
	s := u.String()
	current.Store(&s)
	return nil
}

// nginxServer is nginx serving one file.
type nginxServer struct {
	cmd *exec.Cmd
	url string
	dir string
}

// startNginx serves body as /seg.mp4 from a throw-away nginx (master and
// one worker, no access log, sendfile, keep-alive without a request cap).
func (e *env) startNginx(ctx context.Context, body []byte) (*nginxServer, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, fmt.Errorf("nginx not installed (apt-get install nginx-light): %w", err)
	}
	dir := filepath.Join(e.dir, "nginx")
	if err := os.MkdirAll(filepath.Join(dir, "www"), 0o755); err != nil {
		return nil, err
	}
	// nginx's worker drops to an unprivileged user when started as root: it
	// must be able to traverse the (0700) temp folder, not list it.
	if err := os.Chmod(e.dir, 0o711); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "www", "seg.mp4"), body, 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  types { video/mp4 mp4; }
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path %[1]s/tmp;
  proxy_temp_path %[1]s/tmp;
  fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp;
  scgi_temp_path %[1]s/tmp;
  server { listen 127.0.0.1:%[2]d; root %[1]s/www; }
}
`, dir, port)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	n := &nginxServer{dir: dir, url: fmt.Sprintf("http://127.0.0.1:%d/seg.mp4", port)}
	n.cmd = exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	n.cmd.Stderr = os.Stderr
	step("starting nginx on :%d", port)
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		stop(n.cmd)
		return nil, fmt.Errorf("nginx: %w", err)
	}
	return n, nil
}

// cpu is the CPU time of nginx's master and its workers.
func (n *nginxServer) cpu() (float64, error) {
	pid := n.cmd.Process.Pid
	total, err := cpuSeconds(pid)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	for _, f := range strings.Fields(string(b)) {
		child, _ := strconv.Atoi(f)
		c, err := cpuSeconds(child)
		if err != nil {
			return 0, err
		}
		total += c
	}
	return total, nil
}
