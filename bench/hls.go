package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hlsViewer is a plain (not low-latency) HLS player: it reloads the media
// playlist every half target duration and fetches each new segment once,
// starting three segments from the live edge. Parts are not fetched.
type hlsViewer struct {
	client *http.Client
	index  string
	media  *url.URL
	init   bool
	seen   map[string]bool
	stats  *hlsStats
}

// hlsStats collects request latencies of many viewers.
type hlsStats struct {
	on       atomic.Bool // recording: past warm-up
	mu       sync.Mutex
	playlist []float64
	segment  []float64
	bytes    int64
}

func (s *hlsStats) add(segment bool, d time.Duration, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if segment {
		s.segment = append(s.segment, ms(d))
	} else {
		s.playlist = append(s.playlist, ms(d))
	}
	s.bytes += n
}

func newHLSViewer(index string, stats *hlsStats) *hlsViewer {
	jar, _ := cookiejar.New(nil)
	return &hlsViewer{
		client: &http.Client{Jar: jar, Timeout: 15 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true}},
		index: index, seen: map[string]bool{}, stats: stats,
	}
}

// get fetches u and returns its body; stats are only recorded past warm-up.
func (v *hlsViewer) get(ctx context.Context, u string, segment bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	res, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s %s", u, res.Status, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	if v.stats.on.Load() {
		v.stats.add(segment, time.Since(t0), int64(len(b)))
	}
	return b, nil
}

// start fetches the multivariant playlist and picks its first variant.
func (v *hlsViewer) start(ctx context.Context) error {
	b, err := v.get(ctx, v.index, false)
	if err != nil {
		return err
	}
	base, _ := url.Parse(v.index)
	v.media = base
	if bytes.Contains(b, []byte("#EXT-X-STREAM-INF")) {
		uris := playlistURIs(b)
		if len(uris) == 0 {
			return errors.New("multivariant playlist lists no variant")
		}
		if v.media, err = base.Parse(uris[0]); err != nil {
			return err
		}
	}
	return nil
}

// poll reloads the media playlist once and fetches what is new; it returns
// how many segments it fetched.
func (v *hlsViewer) poll(ctx context.Context) (int, error) {
	b, err := v.get(ctx, v.media.String(), false)
	if err != nil {
		return 0, err
	}
	if !v.init {
		if m := mapURI(b); m != "" {
			u, err := v.media.Parse(m)
			if err != nil {
				return 0, err
			}
			if _, err := v.get(ctx, u.String(), true); err != nil {
				return 0, err
			}
		}
		v.init = true
		uris := playlistURIs(b)
		for _, u := range uris[:max(len(uris)-3, 0)] {
			v.seen[u] = true // a player starts near the live edge
		}
	}
	n := 0
	for _, s := range playlistURIs(b) {
		if v.seen[s] {
			continue
		}
		u, err := v.media.Parse(s)
		if err != nil {
			return n, err
		}
		if _, err := v.get(ctx, u.String(), true); err != nil {
			return n, err
		}
		v.seen[s] = true
		n++
	}
	return n, nil
}

// playlistURIs returns the URI lines of a playlist (segments, or variants),
// without the placeholders an LL-HLS muxer lists before it has enough
// segments (#EXT-X-GAP: not to be fetched).
func playlistURIs(b []byte) []string {
	var out []string
	gap := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		switch l := strings.TrimSpace(sc.Text()); {
		case l == "#EXT-X-GAP":
			gap = true
		case l != "" && !strings.HasPrefix(l, "#"):
			if !gap {
				out = append(out, l)
			}
			gap = false
		}
	}
	return out
}

// mapURI returns the URI of #EXT-X-MAP (the fMP4 init section).
func mapURI(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "#EXT-X-MAP:"); ok {
			if _, after, ok := strings.Cut(rest, `URI="`); ok {
				u, _, _ := strings.Cut(after, `"`)
				return u
			}
		}
	}
	return ""
}

// runHLS plays the camera with N HLS viewers on mediamtx (its own HLS muxer)
// and on camgate (every request authorized against the viewer's session),
// alternated, and reports requests/s, server CPU per request and latency.
func runHLS(ctx context.Context, e *env, o options) ([]result, error) {
	var res []result
	for round := 1; round <= o.rounds; round++ {
		for _, t := range []target{
			{"mediamtx", e.mediamtx.Process.Pid, e.hlsMtx},
			{"camgate", e.camgate().cmd.Process.Pid, e.hlsCam},
		} {
			m, err := hlsRound(ctx, t, o, fmt.Sprintf("%s round %d/%d, %d HLS viewers", t.name, round, o.rounds, o.readers))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			res = append(res, result{Target: t.name, Round: round, Metrics: m})
		}
	}
	return res, nil
}

func hlsRound(ctx context.Context, t target, o options, label string) (map[string]float64, error) {
	stats := &hlsStats{}
	vs := make([]*hlsViewer, o.readers)
	// The first viewer waits out the muxer's start (up to a few segments).
	if err := waitHLSReady(ctx, t.url); err != nil {
		return nil, err
	}
	err := forEach(ctx, o.readers, 8, func(i int) error {
		vs[i] = newHLSViewer(t.url, stats)
		if err := vs[i].start(ctx); err != nil {
			return err
		}
		_, err := vs[i].poll(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, o.readers)
	period := 500 * time.Millisecond // half the 1 s target duration, as players do
	for _, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(period)
			defer tick.Stop()
			for {
				if _, err := v.poll(rctx); err != nil && rctx.Err() == nil {
					errs <- err
					return
				}
				select {
				case <-rctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	if err := waitCtx(ctx, o.warmup, label+" (warm-up)"); err != nil {
		return nil, err
	}
	stats.on.Store(true)
	cpu0, _ := cpuSeconds(t.pid)
	start := time.Now()
	werr := waitCtx(ctx, o.duration, label)
	cpu1, _ := cpuSeconds(t.pid)
	secs := time.Since(start).Seconds()
	cancel()
	wg.Wait()
	close(errs)
	if err := errors.Join(werr, <-errs); err != nil {
		return nil, err
	}
	stats.mu.Lock()
	defer stats.mu.Unlock()
	all := slices.Concat(stats.playlist, stats.segment)
	slices.Sort(all)
	slices.Sort(stats.segment)
	reqs := float64(len(all))
	return map[string]float64{
		"requests_per_s":        reqs / secs,
		"cpu_us_per_request":    (cpu1 - cpu0) * 1e6 / max(reqs, 1),
		"cpu_cores":             (cpu1 - cpu0) / secs,
		"latency_ms_p50":        percentile(all, 50),
		"latency_ms_p99":        percentile(all, 99),
		"segment_ms_p50":        percentile(stats.segment, 50),
		"segment_ms_p99":        percentile(stats.segment, 99),
		"mbit_s_per_viewer":     float64(stats.bytes) * 8 / 1e6 / secs / float64(o.readers),
		"segments_s_per_viewer": float64(len(stats.segment)) / secs / float64(o.readers),
	}, nil
}

// waitHLSReady polls until the index and its first media playlist answer
// 200 (a muxer starts on the first request and needs a few segments).
func waitHLSReady(ctx context.Context, index string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		v := newHLSViewer(index, &hlsStats{})
		err := v.start(ctx)
		if err == nil {
			_, err = v.poll(ctx)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("HLS not ready: %w", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
