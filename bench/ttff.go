package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

const (
	// ttffTrials is how many new viewers each target gets per round and protocol.
	ttffTrials = 10
	// ttffJitter spreads the trials over the clip's 2 s GOP: without it each
	// trial would start right after the previous one saw a keyframe, and a
	// server without a GOP cache would always wait almost a whole GOP.
	ttffJitter = 2 * time.Second
)

// firstFrame opens one new viewer and returns how long it took until the
// viewer held a decodable frame (a keyframe; for HLS the first segment).
type firstFrame func(ctx context.Context) (time.Duration, error)

// runTTFF measures time to first frame for new viewers on each protocol of
// -proto, alternating mediamtx and camgate. A resident RTSP viewer keeps
// camgate's upstream warm, as in production; mediamtx has the publisher.
func runTTFF(ctx context.Context, e *env, o options) ([]result, error) {
	warm, err := dial(e.camURL)
	if err != nil {
		return nil, err
	}
	defer warm.c.Close()
	if err := waitCtx(ctx, o.warmup, "warm-up"); err != nil {
		return nil, err
	}
	protos := o.protos()
	if slices.Contains(protos, "hls") {
		for _, u := range []string{e.hlsMtx, e.hlsCam} {
			if err := waitHLSReady(ctx, u); err != nil { // muxers start on the first request
				return nil, err
			}
		}
	}
	var res []result
	for round := 1; round <= o.rounds; round++ {
		byTarget := map[string]map[string]float64{"mediamtx": {}, "camgate": {}}
		for _, proto := range protos {
			probes, err := e.ttffProbes(proto)
			if err != nil {
				return nil, err
			}
			for _, name := range []string{"mediamtx", "camgate"} {
				label := fmt.Sprintf("%s %s round %d/%d", name, proto, round, o.rounds)
				v, err := ttffTrialsOf(ctx, probes[name], label)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", name, proto, err)
				}
				m := byTarget[name]
				m[proto+"_ttff_ms_mean"], m[proto+"_ttff_ms_p50"], m[proto+"_ttff_ms_max"] = mean(v), percentile(v, 50), percentile(v, 100)
			}
		}
		for _, name := range []string{"mediamtx", "camgate"} {
			res = append(res, result{Target: name, Round: round, Metrics: byTarget[name]})
		}
	}
	return res, nil
}

func ttffTrialsOf(ctx context.Context, f firstFrame, label string) ([]float64, error) {
	bar := newProgress(label, ttffTrials)
	defer bar.done()
	var v []float64
	for range ttffTrials {
		select {
		case <-time.After(rand.N(ttffJitter)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		d, err := f(ctx)
		if err != nil {
			return nil, err
		}
		v = append(v, ms(d))
		bar.add(1)
	}
	slices.Sort(v)
	return v, nil
}

// ttffProbes returns the first-frame probe of each target for proto.
func (e *env) ttffProbes(proto string) (map[string]firstFrame, error) {
	switch proto {
	case "rtsp":
		return map[string]firstFrame{"mediamtx": rtspFirstFrame(e.originURL), "camgate": rtspFirstFrame(e.camURL)}, nil
	case "whep":
		api, err := whepAPI()
		if err != nil {
			return nil, err
		}
		p := map[string]firstFrame{}
		for _, t := range e.whepTargets() {
			p[t.name] = func(ctx context.Context) (time.Duration, error) {
				start := time.Now()
				v, err := dialWHEP(ctx, api, t.endpoint, t.bearer)
				if err != nil {
					return 0, err
				}
				defer v.close()
				return waitKeyframe(ctx, start, v.firstKF)
			}
		}
		return p, nil
	case "hls":
		return map[string]firstFrame{"mediamtx": hlsFirstSegment(e.hlsMtx), "camgate": hlsFirstSegment(e.hlsCam)}, nil
	}
	return nil, fmt.Errorf("unknown protocol %q (-proto takes rtsp, whep, hls)", proto)
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
		start := time.Now()
		v := newHLSViewer(index, &hlsStats{})
		defer v.client.CloseIdleConnections()
		if err := v.start(ctx); err != nil {
			return 0, err
		}
		b, err := v.get(ctx, v.media.String(), false)
		if err != nil {
			return 0, err
		}
		segs := playlistURIs(b)
		m := mapURI(b)
		if len(segs) == 0 || m == "" {
			return 0, errors.New("HLS playlist without init section or segments")
		}
		for _, s := range []string{m, segs[len(segs)-1]} {
			u, err := v.media.Parse(s)
			if err != nil {
				return 0, err
			}
			if _, err := v.get(ctx, u.String(), true); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
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
