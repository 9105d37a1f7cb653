package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// ttffTrials is how many new viewers each target gets per round and protocol.
	ttffTrials = 10
	// ttffJitter spreads the trials over the clip's 2 s GOP: without it each
	// trial would start right after the previous one saw a keyframe, and a
	// server without a GOP cache would always wait almost a whole GOP.
	ttffJitter = 2 * time.Second
	// mtxColdCloseAfter is mediamtx's hlsMuxerCloseAfter with -proto
	// hls-cold. It counts from the start of the last request, and a new
	// muxer's first request waits up to two GOPs (4 s) for its first
	// segment: with 1 s mediamtx destroys every new muxer before it has a
	// segment (the request gets a 500). Its check runs every
	// max(closeAfter/3, 1 s), so the muxer is gone at most 8 s after the
	// last request; a cold trial starts mtxColdWait after the previous one
	// ended.
	mtxColdCloseAfter = 6 * time.Second
	mtxColdWait       = 9 * time.Second
)

// ttffProtos are the values -proto takes for the ttff scenario.
var ttffProtos = []string{"rtsp", "whep", "hls", "hls-cold"}

// firstFrame opens one new viewer and returns how long it took until the
// viewer held a decodable frame (a keyframe; for HLS the first segment).
type firstFrame func(ctx context.Context) (time.Duration, error)

// ttffProbe is one target's trial: prepare (optional) runs before the
// trial's random delay, so a wait of fixed length in it cannot tie the
// trial's start to the GOP; first is the measured viewer.
type ttffProbe struct {
	prepare func(ctx context.Context) error
	first   firstFrame
}

// runTTFF measures time to first frame for new viewers on each protocol of
// -proto, alternating mediamtx and camgate. A resident RTSP viewer keeps
// camgate's upstream warm, as in production; mediamtx has the publisher.
// For hls a resident HLS viewer per server keeps both muxers running, so
// each trial joins a running muxer; for hls-cold each trial starts the
// muxer (see hlsColdProbes).
func runTTFF(ctx context.Context, e *env, o options) ([]result, error) {
	protos := o.protos()
	for _, p := range protos {
		if !slices.Contains(ttffProtos, p) {
			return nil, fmt.Errorf("unknown protocol %q (-proto takes %s)", p, strings.Join(ttffProtos, ", "))
		}
	}
	if slices.Contains(protos, "hls-cold") && e.hlsMtx == "" {
		return nil, errors.New("hls-cold: mediamtx was started without HLS")
	}
	warm, err := dial(e.camURL)
	if err != nil {
		return nil, err
	}
	defer warm.c.Close()
	if err := waitCtx(ctx, o.warmup, "warm-up"); err != nil {
		return nil, err
	}
	var resident *residentHLS
	defer func() { resident.stop() }()
	probes := map[string]map[string]ttffProbe{}
	for _, proto := range protos {
		if probes[proto], err = e.ttffProbes(proto); err != nil {
			return nil, err
		}
	}
	var res []result
	for round := 1; round <= o.rounds; round++ {
		byTarget := map[string]map[string]float64{"mediamtx": {}, "camgate": {}}
		for _, proto := range protos {
			switch {
			case proto == "hls" && resident == nil:
				step("starting a resident HLS viewer on each server (playlist every 0.5 s)")
				if resident, err = startResidentHLS(ctx, e.hlsMtx, e.hlsCam); err != nil {
					return nil, err
				}
			case proto == "hls-cold" && resident != nil:
				resident.stop() // it would keep the muxers running
				resident = nil
				if err := waitCtx(ctx, mtxColdWait, "letting mediamtx's HLS muxer close"); err != nil {
					return nil, err
				}
			}
			for _, name := range []string{"mediamtx", "camgate"} {
				label := fmt.Sprintf("%s %s round %d/%d", name, proto, round, o.rounds)
				v, err := ttffTrialsOf(ctx, probes[proto][name], label)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", name, proto, err)
				}
				m := byTarget[name]
				m[proto+"_ttff_ms_mean"], m[proto+"_ttff_ms_p50"] = mean(v), percentile(v, 50)
				m[proto+"_ttff_ms_min"], m[proto+"_ttff_ms_max"] = v[0], percentile(v, 100)
			}
		}
		for _, name := range []string{"mediamtx", "camgate"} {
			res = append(res, result{Target: name, Round: round, Metrics: byTarget[name]})
		}
	}
	return res, nil
}

func ttffTrialsOf(ctx context.Context, p ttffProbe, label string) ([]float64, error) {
	bar := newProgress(label, ttffTrials)
	defer bar.done()
	var v []float64
	for range ttffTrials {
		if p.prepare != nil {
			if err := p.prepare(ctx); err != nil {
				return nil, err
			}
		}
		select {
		case <-time.After(rand.N(ttffJitter)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		d, err := p.first(ctx)
		if err != nil {
			return nil, err
		}
		v = append(v, ms(d))
		bar.add(1)
	}
	slices.Sort(v)
	return v, nil
}

// ttffProbes returns the probe of each target for proto.
func (e *env) ttffProbes(proto string) (map[string]ttffProbe, error) {
	switch proto {
	case "rtsp":
		return map[string]ttffProbe{"mediamtx": {first: rtspFirstFrame(e.originURL)},
			"camgate": {first: rtspFirstFrame(e.camURL)}}, nil
	case "whep":
		api, err := whepAPI()
		if err != nil {
			return nil, err
		}
		p := map[string]ttffProbe{}
		for _, t := range e.whepTargets() {
			p[t.name] = ttffProbe{first: func(ctx context.Context) (time.Duration, error) {
				start := time.Now()
				v, err := dialWHEP(ctx, api, t.endpoint, t.bearer)
				if err != nil {
					return 0, err
				}
				defer v.close()
				return waitKeyframe(ctx, start, v.firstKF)
			}}
		}
		return p, nil
	case "hls":
		return map[string]ttffProbe{"mediamtx": {first: hlsFirstSegment(e.hlsMtx)},
			"camgate": {first: hlsFirstSegment(e.hlsCam)}}, nil
	case "hls-cold":
		return e.hlsColdProbes(), nil
	}
	return nil, fmt.Errorf("unknown protocol %q (-proto takes %s)", proto, strings.Join(ttffProtos, ", "))
}

func rtspFirstFrame(url string) firstFrame {
	return func(ctx context.Context) (time.Duration, error) {
		start := time.Now()
		r, err := dial(url)
		if err != nil {
			return 0, err
		}
		defer r.c.Close()
		return waitKeyframe(ctx, start, r.firstKF)
	}
}

// hlsFirstSegment is a new HLS viewer: index (the token exchange on
// camgate), media playlist, init section and the newest full segment.
func hlsFirstSegment(index string) firstFrame {
	return func(ctx context.Context) (time.Duration, error) {
		d, _, err := hlsJoin(ctx, index)
		return d, err
	}
}

// hlsJoin is hlsFirstSegment's viewer; it also returns the init section's
// path, which names the muxer: gohlslib (in both servers) starts every file
// name with a random prefix drawn when the muxer starts.
func hlsJoin(ctx context.Context, index string) (time.Duration, string, error) {
	start := time.Now()
	v := newHLSViewer(index, &hlsStats{})
	defer v.client.CloseIdleConnections()
	if err := v.start(ctx); err != nil {
		return 0, "", err
	}
	b, err := v.get(ctx, v.media.String(), false)
	if err != nil {
		return 0, "", err
	}
	segs := playlistURIs(b)
	m := mapURI(b)
	if len(segs) == 0 || m == "" {
		return 0, "", errors.New("HLS playlist without init section or segments")
	}
	var initPath string
	for _, s := range []string{m, segs[len(segs)-1]} {
		u, err := v.media.Parse(s)
		if err != nil {
			return 0, "", err
		}
		if initPath == "" {
			initPath = u.Path
		}
		if _, err := v.get(ctx, u.String(), true); err != nil {
			return 0, "", err
		}
	}
	return time.Since(start), initPath, nil
}

// hlsColdProbes are hlsFirstSegment as the first HLS viewer of the camera:
// each trial's prepare stops the muxer, on camgate by kicking every HLS
// session of the camera through the admin API (the last one stops the
// muxer) until none is listed, on mediamtx (hlsMuxerCloseAfter
// mtxColdCloseAfter) by waiting until mtxColdWait after the previous
// trial's last request. camgate's upstream stays warm (runTTFF's RTSP
// viewer). A trial whose init section has the previous trial's path joined
// a running muxer: that fails the run rather than pass as a cold start.
func (e *env) hlsColdProbes() map[string]ttffProbe {
	cold := func(index string, stopMuxer func(ctx context.Context, lastEnd time.Time) error) ttffProbe {
		var prevInit string
		var lastEnd time.Time
		return ttffProbe{
			prepare: func(ctx context.Context) error { return stopMuxer(ctx, lastEnd) },
			first: func(ctx context.Context) (time.Duration, error) {
				d, initPath, err := hlsJoin(ctx, index)
				lastEnd = time.Now()
				if err != nil {
					return 0, err
				}
				if initPath == prevInit {
					return 0, fmt.Errorf("not a cold start: the muxer of the previous trial served this one (%s)", initPath)
				}
				prevInit = initPath
				return d, nil
			},
		}
	}
	cam := e.camgate()
	return map[string]ttffProbe{
		"mediamtx": cold(e.hlsMtx, func(ctx context.Context, lastEnd time.Time) error {
			select {
			case <-time.After(time.Until(lastEnd.Add(mtxColdWait))):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}),
		"camgate": cold(e.hlsCam, func(ctx context.Context, _ time.Time) error {
			return cam.kickHLSSessions(ctx, "cam")
		}),
	}
}

// kickHLSSessions ends every HLS session of camera through the admin API
// and returns once none is listed: with the last one camgate stops the
// camera's HLS muxer (before answering the DELETE).
func (n *node) kickHLSSessions(ctx context.Context, camera string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, b, err := n.api(ctx, http.MethodGet, "/sessions", "")
		if err != nil {
			return fmt.Errorf("camgate %s API GET /sessions: %w", n.name, err)
		}
		if code != http.StatusOK {
			return fmt.Errorf("camgate %s API GET /sessions: %d %s", n.name, code, b)
		}
		var list struct {
			Sessions []struct {
				ID       string `json:"id"`
				Protocol string `json:"protocol"`
				Camera   string `json:"camera"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("camgate %s API GET /sessions: %w", n.name, err)
		}
		left := 0
		for _, s := range list.Sessions {
			if s.Protocol != "hls" || s.Camera != camera {
				continue
			}
			left++
			code, b, err := n.api(ctx, http.MethodDelete, "/sessions/"+url.PathEscape(s.ID), "")
			if err != nil {
				return fmt.Errorf("camgate %s API DELETE /sessions/%s: %w", n.name, s.ID, err)
			}
			if code != http.StatusNoContent && code != http.StatusNotFound { // 404: it ended meanwhile
				return fmt.Errorf("camgate %s API DELETE /sessions/%s: %d %s", n.name, s.ID, code, b)
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("camgate %s still lists %d HLS sessions of %s after kicking them for 5 s", n.name, left, camera)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// residentHLS is one background HLS viewer per server (keepHLSWarm: the
// media playlist every 0.5 s, no segments), keeping the muxers running.
type residentHLS struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startResidentHLS waits until each index plays (its muxer started) and
// leaves a viewer on it. stop ends them.
func startResidentHLS(ctx context.Context, indexes ...string) (*residentHLS, error) {
	for _, u := range indexes {
		if err := waitHLSReady(ctx, u); err != nil { // muxers start on the first request
			return nil, err
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	r := &residentHLS{cancel: cancel}
	for _, u := range indexes {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); keepHLSWarm(wctx, u, &playlistAges{}) }()
	}
	return r, nil
}

func (r *residentHLS) stop() {
	if r == nil {
		return
	}
	r.cancel()
	r.wg.Wait()
}

// ttffMuxerCloseAfter is mediamtx's hlsMuxerCloseAfter for a run (0: its
// default, 60 s). It also turns mediamtx's HLS on, which bench/main.go's
// needs only do when -proto lists hls.
func ttffMuxerCloseAfter(o options) time.Duration {
	if o.scenario == "ttff" && slices.Contains(o.protos(), "hls-cold") {
		return mtxColdCloseAfter
	}
	return 0
}

func waitKeyframe(ctx context.Context, start time.Time, kf <-chan struct{}) (time.Duration, error) {
	select {
	case <-kf:
		return time.Since(start), nil
	case <-time.After(10 * time.Second):
		return 0, errors.New("no keyframe within 10 s")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// protos parses -proto.
func (o options) protos() []string {
	var out []string
	for _, p := range strings.Split(o.proto, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
