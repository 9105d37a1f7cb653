package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/camgate/camgate/internal/whepclient"
)

// whepViewer is one pion peer connection receiving a camera over WHEP.
type whepViewer struct {
	pc       *webrtc.PeerConnection
	location string
	bearer   string
	packets  atomic.Uint64
	firstKF  chan struct{}
	kfOnce   sync.Once
}

// whepAPI is shared by all viewers: the media engine and settings are the
// same for each, and building them per viewer would load the bench process.
func whepAPI() (*webrtc.API, error) { return whepclient.API(nil) }

// dialWHEP posts an offer to endpoint and applies the answer; bearer may be
// empty (mediamtx).
func dialWHEP(ctx context.Context, api *webrtc.API, endpoint, bearer string) (*whepViewer, error) {
	pc, err := whepclient.RecvOnly(api)
	if err != nil {
		return nil, err
	}
	v := &whepViewer{pc: pc, bearer: bearer, firstKF: make(chan struct{})}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { v.read(tr) })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		pc.Close()
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		pc.Close()
		return nil, err
	}
	<-gathered
	answer, location, err := postOffer(ctx, endpoint, bearer, pc.LocalDescription().SDP)
	if err != nil {
		pc.Close()
		return nil, err
	}
	if loc, err := url.Parse(endpoint); err == nil {
		if l, err := loc.Parse(location); err == nil && location != "" {
			v.location = l.String()
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}

func postOffer(ctx context.Context, endpoint, bearer, sdp string) (answer, location string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(sdp))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", "", err
	}
	if res.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("WHEP POST %s: %s %s", endpoint, res.Status, b)
	}
	return string(b), res.Header.Get("Location"), nil
}

// read counts a track's packets until the connection closes, and notes the
// first H264 keyframe.
func (v *whepViewer) read(tr *webrtc.TrackRemote) {
	h264 := strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeH264)
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		v.packets.Add(1)
		if h264 && h264Key(pkt.Payload) {
			v.kfOnce.Do(func() { close(v.firstKF) })
		}
	}
}

// close ends the WHEP session (DELETE on its Location) and the peer.
func (v *whepViewer) close() {
	if v.location != "" {
		req, err := http.NewRequest(http.MethodDelete, v.location, nil)
		if err == nil {
			if v.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+v.bearer)
			}
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}
	}
	_ = v.pc.Close()
}

func closeWHEP(vs []*whepViewer) {
	var wg sync.WaitGroup
	for _, v := range vs {
		if v != nil {
			wg.Add(1)
			go func() { defer wg.Done(); v.close() }()
		}
	}
	wg.Wait()
}

// whepTarget is a WHEP endpoint under test.
type whepTarget struct {
	name     string
	pid      int
	endpoint string
	bearer   string
}

func (e *env) whepTargets() []whepTarget {
	return []whepTarget{
		{"mediamtx", e.mediamtx.Process.Pid, e.whepMtx, ""},
		{"camgate", e.camgate().cmd.Process.Pid, e.whepCam, e.token},
	}
}

// runWHEP connects N pion viewers to mediamtx's and camgate's WHEP
// endpoints, alternated, and reports the server's CPU per viewer-second and
// the packets each viewer received.
func runWHEP(ctx context.Context, e *env, o options) ([]result, error) {
	api, err := whepAPI()
	if err != nil {
		return nil, err
	}
	var res []result
	for round := 1; round <= o.rounds; round++ {
		for _, t := range e.whepTargets() {
			label := fmt.Sprintf("%s round %d/%d, %d WHEP viewers", t.name, round, o.rounds, o.readers)
			m, err := whepRound(ctx, api, t, o, label)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			res = append(res, result{Target: t.name, Round: round, Metrics: m})
		}
	}
	return res, nil
}

func whepRound(ctx context.Context, api *webrtc.API, t whepTarget, o options, label string) (map[string]float64, error) {
	rss0, err := rssBytes(t.pid)
	if err != nil {
		return nil, err
	}
	vs := make([]*whepViewer, o.readers)
	defer func() { closeWHEP(vs) }()
	var mu sync.Mutex
	var connect []float64
	err = forEach(ctx, o.readers, 4, func(i int) error {
		t0 := time.Now()
		v, err := dialWHEP(ctx, api, t.endpoint, t.bearer)
		if err != nil {
			return err
		}
		vs[i] = v
		select {
		case <-v.firstKF:
		case <-time.After(15 * time.Second):
			return errors.New("no keyframe within 15 s")
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		connect = append(connect, ms(time.Since(t0)))
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := waitCtx(ctx, o.warmup, label+" (warm-up)"); err != nil {
		return nil, err
	}
	cpu0, _ := cpuSeconds(t.pid)
	p0 := make([]uint64, len(vs))
	for i, v := range vs {
		p0[i] = v.packets.Load()
	}
	start := time.Now()
	if err := waitCtx(ctx, o.duration, label); err != nil {
		return nil, err
	}
	cpu1, _ := cpuSeconds(t.pid)
	secs := time.Since(start).Seconds()
	rss1, _ := rssBytes(t.pid)
	rates := make([]float64, len(vs))
	var pkts float64
	for i, v := range vs {
		n := float64(v.packets.Load() - p0[i])
		pkts += n
		rates[i] = n / secs
	}
	slices.Sort(rates)
	slices.Sort(connect)
	return map[string]float64{
		"cpu_ms_per_viewer_s":   (cpu1 - cpu0) * 1000 / (secs * float64(o.readers)),
		"cpu_us_per_packet":     (cpu1 - cpu0) * 1e6 / math.Max(pkts, 1),
		"cpu_cores":             (cpu1 - cpu0) / secs,
		"mem_kib_per_viewer":    float64(rss1-rss0) / 1024 / float64(o.readers),
		"pkts_s_min":            rates[0],
		"pkts_s_avg":            mean(rates),
		"first_keyframe_ms_p50": percentile(connect, 50),
	}, nil
}
