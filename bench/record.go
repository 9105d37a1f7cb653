package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// relayPath is the origin's on-demand relay of the camera: every recorded
// camera N pulls rtsp://origin/rec<N>, which the origin pulls from its own
// "cam" (ffmpeg's stream) only while someone reads it. Both targets read the
// same N paths, so the origin's cost is the same for both.
func relayPath(i int) string { return fmt.Sprintf("rec%d", i) }

// recorderTarget is one server recording N cameras for one round.
type recorderTarget struct {
	name  string
	start func(ctx context.Context, dir string, n int) (pid int, stop func(), err error)
	// pprof is the target's pprof base URL ("" when none), set by start.
	pprof *string
}

// runRecord alternates mediamtx and camgate, each started fresh per round
// and pulling and recording the origin's N relay paths (fMP4, -segment
// segments, 1 s parts on both), and reports CPU and RSS per camera, the
// bytes written against the stream's bitrate, and gaps between segments.
func runRecord(ctx context.Context, e *env, o options) ([]result, error) {
	st, err := os.Stat(e.clip)
	if err != nil {
		return nil, err
	}
	clipMbit := float64(st.Size()) * 8 / 10 / 1e6 // the clip is 10 s long
	var res []result
	var pprofURL string
	for round := 1; round <= o.rounds; round++ {
		for _, t := range []recorderTarget{
			{"mediamtx", e.startMediamtxRecorder(o), nil},
			{"camgate", e.startCamgateRecorder(o, &pprofURL), &pprofURL},
		} {
			m, err := e.recordRound(ctx, o, t, round, clipMbit)
			if err != nil {
				return nil, fmt.Errorf("%s round %d: %w", t.name, round, err)
			}
			res = append(res, result{Target: t.name, Round: round, Metrics: m})
		}
	}
	return res, nil
}

func (e *env) recordRound(ctx context.Context, o options, t recorderTarget, round int, clipMbit float64) (map[string]float64, error) {
	n := o.cameras
	dir, err := os.MkdirTemp(e.dir, "rec-"+strings.ReplaceAll(t.name, " ", "-")+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	pid, stopTarget, err := t.start(ctx, dir, n)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			stopTarget()
		}
	}()
	// Every camera must be writing before the window opens.
	recDir := filepath.Join(dir, "rec")
	step("%s round %d/%d: waiting for %d cameras to write a segment", t.name, round, o.rounds, n)
	deadline := time.Now().Add(30*time.Second + time.Duration(n)*50*time.Millisecond)
	for {
		k := camerasWriting(recDir, n)
		if k == n {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d cameras started recording", k, n)
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if err := waitCtx(ctx, o.warmup, fmt.Sprintf("%s round %d/%d: warm-up", t.name, round, o.rounds)); err != nil {
		return nil, err
	}
	bytes0 := dirBytes(recDir)
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	profDone := make(chan error, 1)
	profiling := o.pprof != "" && t.pprof != nil && *t.pprof != ""
	if profiling {
		name := filepath.Join(o.pprof, fmt.Sprintf("cpu-%d-cameras-round%d.pprof", n, round))
		go func() {
			profDone <- fetchTo(ctx, fmt.Sprintf("%s/profile?seconds=%d", *t.pprof, int(o.duration.Seconds())), name)
		}()
	}
	// RSS moves with every GC cycle: it is sampled every 250 ms over the window.
	var rssSum, rssN float64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				if v, err := rssBytes(pid); err == nil {
					rssSum += float64(v)
					rssN++
				}
			}
		}
	}()
	err = waitCtx(ctx, o.duration, fmt.Sprintf("%s round %d/%d, %d cameras recording", t.name, round, o.rounds, n))
	close(stopSampling)
	<-sampled
	if err != nil {
		return nil, err
	}
	if profiling {
		if err := <-profDone; err != nil {
			return nil, err
		}
		for file, path := range map[string]string{"heap-%d-cameras-round%d.pprof": "/heap",
			"memstats-%d-cameras-round%d.txt": "/heap?debug=1", "goroutines-%d-cameras-round%d.txt": "/goroutine?debug=1"} {
			if err := fetchTo(ctx, *t.pprof+path, filepath.Join(o.pprof, fmt.Sprintf(file, n, round))); err != nil {
				return nil, err
			}
		}
	}
	cpu1, _ := cpuSeconds(pid)
	secs := time.Since(t0).Seconds()
	bytes1 := dirBytes(recDir)
	rss := rssSum / max(rssN, 1)
	hwm, _ := procStatusKiB(pid, "VmHWM:")
	stopTarget()
	stopped = true
	gaps, gapMax, segs, total, footage, err := recordingGaps(recDir)
	if err != nil {
		return nil, err
	}
	mbit := float64(bytes1-bytes0) * 8 / secs / 1e6 / float64(n)
	// Every segment's bytes over its footage: the recording's own bitrate.
	footageMbit := float64(total) * 8 / max(footage.Seconds(), 1e-9) / 1e6
	return map[string]float64{
		"cpu_ms_per_camera_s": (cpu1 - cpu0) * 1000 / secs / float64(n),
		"cpu_cores":           (cpu1 - cpu0) / secs,
		"rss_mib_per_camera":  rss / (1 << 20) / float64(n),
		"rss_mib":             rss / (1 << 20),
		"rss_peak_mib":        float64(hwm) / 1024,
		"mbit_s_per_camera":   mbit,
		"bytes_vs_stream":     footageMbit / clipMbit,
		"footage_s":           footage.Seconds(),
		"segments":            float64(segs),
		"gaps":                float64(gaps),
		"gap_ms_max":          gapMax,
	}, nil
}

// camerasWriting counts camera folders holding a segment file.
func camerasWriting(dir string, n int) int {
	k := 0
	for i := range n {
		m, _ := filepath.Glob(filepath.Join(dir, relayPath(i), "*.mp4"))
		if len(m) > 0 {
			k++
		}
	}
	return k
}

func dirBytes(dir string) int64 {
	var total int64
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d // camgate's archive is linked
	}
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// recordingGaps reads every camera's segments (the targets have stopped, so
// every segment is complete) and counts the holes: between consecutive
// segments of a camera, next start − (start + duration) over 100 ms, and
// inside a segment, a sample lasting over 500 ms. The
// start is the wall-clock time in the file name (both servers name
// segments %Y-%m-%d_%H-%M-%S-%f), the duration the longest track's end by
// its fragments' base times and sample durations.
func recordingGaps(dir string) (gaps int, gapMaxMs float64, segments int, bytes int64, footage time.Duration, err error) {
	cams, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, 0, 0, 0, err
	}
	for _, c := range cams {
		names, _ := filepath.Glob(filepath.Join(dir, c.Name(), "*.mp4"))
		slices.Sort(names)
		var prevEnd time.Time
		for i, name := range names {
			start, err := parseSegment(strings.TrimSuffix(filepath.Base(name), ".mp4"))
			if err != nil {
				return 0, 0, 0, 0, 0, err
			}
			dur, size, h, err := segmentDuration(name)
			if err != nil {
				return 0, 0, 0, 0, 0, fmt.Errorf("%s: %w", name, err)
			}
			gaps += h
			segments++
			bytes += size
			footage += dur
			if i > 0 {
				g := start.Sub(prevEnd)
				gapMaxMs = max(gapMaxMs, ms(g))
				if g > 100*time.Millisecond {
					gaps++
				}
			}
			prevEnd = start.Add(dur)
		}
	}
	return gaps, gapMaxMs, segments, bytes, footage, nil
}

func segmentDuration(name string) (d time.Duration, size int64, holes int, err error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, 0, 0, err
	}
	// Top-level boxes: ftyp and moov are the init, moof+mdat pairs follow.
	initEnd, end := 0, 0
	for end+8 <= len(b) {
		size := int(binary.BigEndian.Uint32(b[end:]))
		if size < 8 || end+size > len(b) {
			break // a truncated last box
		}
		if string(b[end+4:end+8]) == "moov" {
			initEnd = end + size
		}
		end += size
	}
	scale := trackTimescales(b[:initEnd])
	var parts fmp4.Parts
	if err := parts.Unmarshal(b[initEnd:end]); err != nil {
		return 0, 0, 0, fmt.Errorf("parts: %w", err)
	}
	var longest time.Duration
	for _, p := range parts {
		for _, t := range p.Tracks {
			end := t.BaseTime
			for _, s := range t.Samples {
				end += uint64(s.Duration)
				// A sample lasting over 500 ms is media missing inside the
				// segment (25 fps video, 20 ms audio frames).
				if ts := scale[t.ID]; ts > 0 && uint64(s.Duration)*2 > uint64(ts) {
					holes++
				}
			}
			if ts := scale[t.ID]; ts > 0 {
				longest = max(longest, time.Duration(end)*time.Second/time.Duration(ts))
			}
		}
	}
	return longest, int64(len(b)), holes, nil
}

// startMediamtxRecorder runs a second mediamtx (not the origin) that pulls
// the N relay paths and records them: no server of its own, fMP4 with the
// same segment and part durations as camgate.
func (e *env) startMediamtxRecorder(o options) func(ctx context.Context, dir string, n int) (int, func(), error) {
	return func(ctx context.Context, dir string, n int) (int, func(), error) {
		var b strings.Builder
		fmt.Fprintf(&b, `logLevel: warn
api: false
metrics: false
pprof: false
playback: false
rtsp: false
rtmp: false
hls: false
webrtc: false
srt: false
moq: false
pathDefaults:
  record: true
  recordPath: %s/rec/%%path/%%Y-%%m-%%d_%%H-%%M-%%S-%%f
  recordFormat: fmp4
  recordPartDuration: 1s
  recordSegmentDuration: %s
  recordDeleteAfter: 0s
paths:
`, dir, o.segment)
		for i := range n {
			fmt.Fprintf(&b, "  %s: {source: \"%s/%s\"}\n", relayPath(i), e.originBase(), relayPath(i))
		}
		cfg := filepath.Join(dir, "mediamtx.yml")
		if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
			return 0, nil, err
		}
		cmd := exec.Command(e.mtxBin, cfg)
		cmd.Dir = dir
		cmd.Stderr, cmd.Stdout = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return 0, nil, err
		}
		return cmd.Process.Pid, func() { stop(cmd) }, nil
	}
}

// startCamgateRecorder runs camgate with N cameras, each recording its
// relay path into dir/rec (the archive root; folders named by camera id).
func (e *env) startCamgateRecorder(o options, pprofURL *string) func(ctx context.Context, dir string, n int) (int, func(), error) {
	return func(ctx context.Context, dir string, n int) (int, func(), error) {
		extra := []string{"CAMGATE_ARCHIVE_SEGMENT_DURATION=" + o.segment.String(), "CAMGATE_SESSIONS_GOP_CACHE=" + o.gop}
		if e.pprof {
			p, err := freePort()
			if err != nil {
				return 0, nil, err
			}
			extra = append(extra, fmt.Sprintf("CG_BENCH_PPROF=127.0.0.1:%d", p))
			*pprofURL = fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", p)
		}
		nd, err := e.startCamerasNode(ctx, dir, n, true, extra...)
		if err != nil {
			return 0, nil, err
		}
		// The archive lives in <data>/archive: link it where the counting looks.
		if err := os.Symlink(filepath.Join(nd.dataDir, "archive"), filepath.Join(dir, "rec")); err != nil {
			nd.stop()
			return 0, nil, err
		}
		return nd.cmd.Process.Pid, nd.stop, nil
	}
}

// originBase is rtsp://host:port of the origin.
func (e *env) originBase() string {
	return strings.TrimSuffix(e.originURL, "/cam")
}

// startCamerasNode starts a camgate node in dir with n cameras cam<i>… named
// by relayPath and pulling the origin's relay paths.
func (e *env) startCamerasNode(ctx context.Context, dir string, n int, record bool, extra ...string) (*node, error) {
	var b strings.Builder
	b.WriteString("cameras:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {id: %s, site: bench, source: \"%s/%s\", record: %t}\n", relayPath(i), e.originBase(), relayPath(i), record)
	}
	cfg := filepath.Join(dir, "camgate.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	return e.startNodeConfig(ctx, "rec", filepath.Join(dir, "data"), cfg, extra)
}

// sleepCtx waits d or until ctx is done, without a progress bar.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// trackTimescales maps track ID to time scale from an init (ftyp, moov):
// each trak's tkhd and mdia/mdhd. (mediacommon's fmp4.Init does not read
// every init mediamtx writes.)
func trackTimescales(b []byte) map[int]uint32 {
	out := map[int]uint32{}
	var walk func(b []byte, id *int)
	walk = func(b []byte, id *int) {
		for len(b) >= 8 {
			size := int(binary.BigEndian.Uint32(b))
			if size < 8 || size > len(b) {
				return
			}
			typ, body := string(b[4:8]), b[8:size]
			switch typ {
			case "moov", "mdia":
				walk(body, id)
			case "trak":
				var tid int
				walk(body, &tid)
			case "tkhd":
				if len(body) >= 24 && id != nil {
					if body[0] == 1 {
						*id = int(binary.BigEndian.Uint32(body[20:]))
					} else {
						*id = int(binary.BigEndian.Uint32(body[12:]))
					}
				}
			case "mdhd":
				if len(body) >= 24 && id != nil {
					if body[0] == 1 {
						out[*id] = binary.BigEndian.Uint32(body[20:])
					} else {
						out[*id] = binary.BigEndian.Uint32(body[12:])
					}
				}
			}
			b = b[size:]
		}
	}
	walk(b, nil)
	return out
}

// fetchTo saves the body of GET url (a pprof profile) to name.
func fetchTo(ctx context.Context, url, name string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: %s", url, res.Status)
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
