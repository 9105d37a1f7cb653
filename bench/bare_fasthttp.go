package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/valyala/fasthttp"
)

// serveFileEnv, set, turns the bench binary into the bare fasthttp server of
// hls-segment: it serves that file's bytes for every request and prints its
// address. It is camgate's HTTP stack without camgate: no routing, session
// or authorization, the body written as camgate writes a segment.
const serveFileEnv = "CAMGATE_BENCH_SERVE_FILE"

// serveBareFastHTTP runs the bare server (never returns while it serves).
func serveBareFastHTTP(path string) error {
	body, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("video/mp4")
		ctx.Response.SetBodyRaw(body)
	}}
	return s.Serve(ln)
}

// bareServer is the bare fasthttp server process.
type bareServer struct {
	cmd *exec.Cmd
	url string
}

// startBareFastHTTP starts this binary again as the bare server of body.
func (e *env) startBareFastHTTP(ctx context.Context, body []byte) (*bareServer, error) {
	path := filepath.Join(e.dir, "bare-seg.mp4")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), serveFileEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop(cmd)
		return nil, fmt.Errorf("bare fasthttp server: %w", err)
	}
	return &bareServer{cmd: cmd, url: "http://" + strings.TrimSpace(line) + "/seg.mp4"}, nil
}
