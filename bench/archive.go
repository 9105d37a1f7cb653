package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// segmentLayout is archive's segment file name (UTC start time, then
// microseconds after the last dash).
const segmentLayout = "2006-01-02_15-04-05"

// recording is the finished part of camgate's recording of the camera.
type recording struct {
	files      []string
	bytes      int64
	start, end time.Time // end: start of the segment still being written
}

// runArchive lets camgate record the camera for -record, then alternates
// N clients downloading the whole finished recording as one MP4
// (GET /archive/cam/download) with N clients reading the same segment files
// straight from disk, the most any download path could do here.
func runArchive(ctx context.Context, e *env, o options) ([]result, error) {
	if err := waitCtx(ctx, o.record, fmt.Sprintf("camgate recording the camera (%s segments)", o.segment)); err != nil {
		return nil, err
	}
	rec, err := finishedRecording(filepath.Join(e.camgate().dataDir, "archive", "cam"))
	if err != nil {
		return nil, err
	}
	step("downloading %d segments, %.1f MB, %s of footage", len(rec.files), float64(rec.bytes)/1e6, rec.end.Sub(rec.start))
	q := url.Values{"start": {rec.start.Format(time.RFC3339Nano)}, "end": {rec.end.Format(time.RFC3339Nano)}, "token": {e.token}}
	dl := e.camgate().http + "/archive/cam/download?" + q.Encode()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.readers, DisableCompression: true}}
	camPid := e.camgate().cmd.Process.Pid
	var res []result
	for round := 1; round <= o.rounds; round++ {
		for _, t := range []struct {
			name  string
			cpu   func() (float64, error)
			fetch func(context.Context) (int64, error)
		}{
			{"raw disk", func() (float64, error) { return cpuSeconds(os.Getpid()) },
				func(context.Context) (int64, error) { return readFiles(rec.files) }},
			{"camgate", func() (float64, error) { return cpuSeconds(camPid) },
				func(ctx context.Context) (int64, error) { return download(ctx, client, dl, "video/mp4") }},
		} {
			label := fmt.Sprintf("%s round %d/%d, %d clients", t.name, round, o.rounds, o.readers)
			m, err := transferLoad(ctx, t.cpu, o.readers, o.duration, label, t.fetch)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			res = append(res, result{Target: t.name, Round: round, Metrics: m})
		}
	}
	return res, nil
}

// finishedRecording lists the segments of dir except the newest, which the
// recorder is still writing.
func finishedRecording(dir string) (recording, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.mp4"))
	if err != nil {
		return recording{}, err
	}
	slices.Sort(names)
	if len(names) < 3 {
		return recording{}, fmt.Errorf("only %d segments recorded in %s: record longer (-record)", len(names), dir)
	}
	var rec recording
	for i, n := range names {
		base := strings.TrimSuffix(filepath.Base(n), ".mp4")
		t, err := parseSegment(base)
		if err != nil {
			return recording{}, err
		}
		if i == 0 {
			rec.start = t
		}
		if i == len(names)-1 {
			rec.end = t
			break
		}
		st, err := os.Stat(n)
		if err != nil {
			return recording{}, err
		}
		rec.files = append(rec.files, n)
		rec.bytes += st.Size()
	}
	return rec, nil
}

// parseSegment parses a segment's base name; the microseconds are not a
// time layout element, so they are parsed apart.
func parseSegment(base string) (time.Time, error) {
	if len(base) < len(segmentLayout)+2 || base[len(segmentLayout)] != '-' {
		return time.Time{}, fmt.Errorf("unexpected segment name %q", base)
	}
	us := base[len(segmentLayout)+1:]
	t, err := time.ParseInLocation(segmentLayout, base[:len(segmentLayout)], time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("unexpected segment name %q: %w", base, err)
	}
	d, err := time.ParseDuration(us + "us")
	if err != nil {
		return time.Time{}, fmt.Errorf("unexpected segment name %q: %w", base, err)
	}
	return t.Add(d), nil
}

func readFiles(files []string) (int64, error) {
	var n int64
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return n, err
		}
		c, err := io.Copy(io.Discard, f)
		f.Close()
		n += c
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// download GETs u and discards the body; the answer must be 200 with
// Content-Type ctype.
func download(ctx context.Context, client *http.Client, u, ctype string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != ctype {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return 0, fmt.Errorf("download: %s %s %s", res.Status, res.Header.Get("Content-Type"), b)
	}
	return io.Copy(io.Discard, res.Body)
}

// transferLoad runs clients calling fetch back to back for d and reports
// throughput, latency per transfer and the server's CPU (cpu) per MB and per
// transfer.
func transferLoad(ctx context.Context, cpu func() (float64, error), clients int, d time.Duration, label string,
	fetch func(context.Context) (int64, error)) (map[string]float64, error) {
	var (
		total atomic.Int64
		mu    sync.Mutex
		lat   []float64
	)
	deadline := time.Now().Add(d)
	bar := newProgress(label, d)
	cpu0, _ := cpu()
	start := time.Now()
	err := forEach(ctx, clients, clients, func(int) error {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			t0 := time.Now()
			n, err := fetch(ctx)
			if err != nil {
				return err
			}
			total.Add(n)
			mu.Lock()
			lat = append(lat, ms(time.Since(t0)))
			mu.Unlock()
			bar.update()
		}
		return nil
	})
	secs := time.Since(start).Seconds()
	cpu1, _ := cpu()
	bar.done()
	if err != nil {
		return nil, err
	}
	slices.Sort(lat)
	mb := float64(total.Load()) / 1e6
	return map[string]float64{
		"mb_per_s":        mb / secs,
		"transfers_per_s": float64(len(lat)) / secs,
		"transfer_ms_p50": percentile(lat, 50),
		"transfer_ms_p99": percentile(lat, 99),
		"cpu_ms_per_mb":   (cpu1 - cpu0) * 1000 / max(mb, 1e-9),
		"cpu_us_per_xfer": (cpu1 - cpu0) * 1e6 / float64(max(len(lat), 1)),
		"cpu_cores":       (cpu1 - cpu0) / secs,
	}, nil
}
