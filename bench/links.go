package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runLinks measures share links on camgate: how many POST /api/v1/links per
// second N clients get, and how many RTSP DESCRIBEs per second N keep-alive
// connections get when each carries a link token (verify the Ed25519 token,
// look the link up, decide against its creator's rights) — next to the same
// load with a viewer JWT and against mediamtx without any authorization.
func runLinks(ctx context.Context, e *env, o options) ([]result, error) {
	var res []result
	for round := 1; round <= o.rounds; round++ {
		created, toks, err := createLinks(ctx, e, o, round)
		if err != nil {
			return nil, err
		}
		linkURLs := make([]string, len(toks))
		for i, t := range toks {
			linkURLs[i] = fmt.Sprintf("rtsp://%s/cam?token=%s", e.camgate().rtsp, t)
		}
		camPid := e.camgate().cmd.Process.Pid
		for _, t := range []struct {
			name string
			pid  int
			urls []string
		}{
			{"mediamtx", e.mediamtx.Process.Pid, []string{e.originURL}},
			{"camgate jwt", camPid, []string{e.camURL}},
			{"camgate link", camPid, linkURLs},
		} {
			label := fmt.Sprintf("%s round %d/%d: DESCRIBE, %d connections", t.name, round, o.rounds, o.readers)
			m, err := describeLoad(ctx, t.pid, t.urls, o.readers, o.duration, label)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			if t.name == "camgate link" {
				for k, v := range created {
					m[k] = v
				}
			}
			res = append(res, result{Target: t.name, Round: round, Metrics: m})
		}
	}
	return res, nil
}

// createLinks runs N clients creating links for o.duration and returns the
// figures and the tokens.
func createLinks(ctx context.Context, e *env, o options, round int) (map[string]float64, []string, error) {
	n := e.camgate()
	pid := n.cmd.Process.Pid
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.readers}}
	notAfter := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	body := `{"device":"cam","actions":["live"],"not_after":"` + notAfter + `"}`
	var (
		mu   sync.Mutex
		toks []string
		lat  []float64
	)
	deadline := time.Now().Add(o.duration)
	bar := newProgress(fmt.Sprintf("camgate round %d/%d: creating links, %d clients", round, o.rounds, o.readers), o.duration)
	cpu0, _ := cpuSeconds(pid)
	start := time.Now()
	err := forEach(ctx, o.readers, o.readers, func(int) error {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			t0 := time.Now()
			tok, err := createLink(ctx, client, n.http, body)
			if err != nil {
				return err
			}
			d := ms(time.Since(t0))
			mu.Lock()
			toks, lat = append(toks, tok), append(lat, d)
			mu.Unlock()
			bar.update()
		}
		return nil
	})
	secs := time.Since(start).Seconds()
	cpu1, _ := cpuSeconds(pid)
	bar.done()
	if err != nil {
		return nil, nil, err
	}
	if len(toks) == 0 {
		return nil, nil, fmt.Errorf("no link created in %s", o.duration)
	}
	slices.Sort(lat)
	return map[string]float64{
		"create_per_s":      float64(len(toks)) / secs,
		"create_ms_p50":     percentile(lat, 50),
		"create_ms_p99":     percentile(lat, 99),
		"create_cpu_ms_per": (cpu1 - cpu0) * 1000 / float64(len(toks)),
	}, toks, nil
}

func createLink(ctx context.Context, client *http.Client, base, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/links", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+benchAdminKey)
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST /api/v1/links: %d %s", res.StatusCode, b)
	}
	var c struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Token == "" {
		return "", fmt.Errorf("POST /api/v1/links: no token in %s", b)
	}
	return c.Token, nil
}

// describeLoad keeps conns connections each sending DESCRIBE after DESCRIBE
// (URLs taken round-robin) for d, and reports the rate, the latency and the
// server's CPU per request.
func describeLoad(ctx context.Context, pid int, urls []string, conns int, d time.Duration, label string) (map[string]float64, error) {
	var (
		next atomic.Uint64
		mu   sync.Mutex
		lat  []float64
	)
	deadline := time.Now().Add(d)
	bar := newProgress(label, d)
	cpu0, _ := cpuSeconds(pid)
	start := time.Now()
	err := forEach(ctx, conns, conns, func(int) error {
		var c *rtspConn
		defer func() { c.close() }()
		var mine []float64
		for time.Now().Before(deadline) && ctx.Err() == nil {
			url := urls[next.Add(1)%uint64(len(urls))]
			if c == nil {
				var err error
				if c, err = dialRTSPConn(url); err != nil {
					return err
				}
			}
			t0 := time.Now()
			code, err := c.describe(url)
			if err != nil {
				return err
			}
			if code != 200 {
				return fmt.Errorf("DESCRIBE answered %d", code)
			}
			mine = append(mine, ms(time.Since(t0)))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
		return nil
	})
	secs := time.Since(start).Seconds()
	cpu1, _ := cpuSeconds(pid)
	bar.done()
	if err != nil {
		return nil, err
	}
	slices.Sort(lat)
	return map[string]float64{
		"describe_per_s":         float64(len(lat)) / secs,
		"describe_ms_p50":        percentile(lat, 50),
		"describe_ms_p99":        percentile(lat, 99),
		"describe_cpu_us_per_op": (cpu1 - cpu0) * 1e6 / float64(max(len(lat), 1)),
	}, nil
}

// rtspConn is a bare RTSP/1.0 client connection: cheaper on the client side
// than gortsplib, so the server is what the figure measures.
type rtspConn struct {
	nc   net.Conn
	r    *textproto.Reader
	cseq int
}

func dialRTSPConn(url string) (*rtspConn, error) {
	host, _, _ := strings.Cut(strings.TrimPrefix(url, "rtsp://"), "/")
	nc, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rtspConn{nc: nc, r: textproto.NewReader(bufio.NewReader(nc))}, nil
}

func (c *rtspConn) describe(url string) (int, error) {
	c.cseq++
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c.nc, "DESCRIBE %s RTSP/1.0\r\nCSeq: %d\r\nAccept: application/sdp\r\n\r\n", url, c.cseq); err != nil {
		return 0, err
	}
	line, err := c.r.ReadLine()
	if err != nil {
		return 0, err
	}
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "RTSP/") {
		return 0, fmt.Errorf("bad RTSP status line %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("bad RTSP status line %q", line)
	}
	h, err := c.r.ReadMIMEHeader()
	if err != nil {
		return 0, err
	}
	if n, _ := strconv.Atoi(h.Get("Content-Length")); n > 0 {
		if _, err := io.CopyN(io.Discard, c.r.R, int64(n)); err != nil {
			return 0, err
		}
	}
	return code, nil
}

func (c *rtspConn) close() {
	if c != nil {
		c.nc.Close()
	}
}
