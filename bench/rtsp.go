package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// reader is one RTSP client counting what it receives.
type reader struct {
	c       *gortsplib.Client
	packets atomic.Uint64
	bytes   atomic.Uint64
	firstKF chan struct{}
	kfOnce  sync.Once
}

func h264Key(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case 5, 7:
		return true
	case 24:
		return len(p) > 3 && (p[3]&0x1f == 5 || p[3]&0x1f == 7)
	case 28:
		return p[1]&0x80 != 0 && p[1]&0x1f == 5
	}
	return false
}

// dial connects a TCP reader to url and starts playing.
func dial(url string) (*reader, error) { return dialWith(url, nil) }

// dialWith is dial with onPacket (when not nil) called at every packet.
func dialWith(url string, onPacket func()) (*reader, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	tcp := gortsplib.ProtocolTCP
	r := &reader{firstKF: make(chan struct{})}
	r.c = &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp, ReadTimeout: 10 * time.Second}
	if err := r.c.Start(); err != nil {
		return nil, err
	}
	desc, _, err := r.c.Describe(u)
	if err != nil {
		r.c.Close()
		return nil, err
	}
	if err := r.c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		r.c.Close()
		return nil, err
	}
	r.c.OnPacketRTPAny(func(m *description.Media, f format.Format, pkt *rtp.Packet) {
		r.packets.Add(1)
		if onPacket != nil {
			onPacket()
		}
		r.bytes.Add(uint64(len(pkt.Payload) + 12))
		if _, ok := f.(*format.H264); ok && h264Key(pkt.Payload) {
			r.kfOnce.Do(func() { close(r.firstKF) })
		}
	})
	if _, err := r.c.Play(nil); err != nil {
		r.c.Close()
		return nil, err
	}
	return r, nil
}

func dialAll(ctx context.Context, url string, n int) ([]*reader, error) {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = url
	}
	return dialURLs(ctx, urls)
}

// dialURLs opens one reader per URL, 8 at a time.
func dialURLs(ctx context.Context, urls []string) ([]*reader, error) {
	n := len(urls)
	out := make([]*reader, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, url := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := dial(url)
			if err != nil {
				errs <- err
				return
			}
			out[i] = r
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		closeAll(out)
		return nil, err
	}
	return out, ctx.Err()
}

func closeAll(rs []*reader) {
	for _, r := range rs {
		if r != nil {
			r.c.Close()
		}
	}
}

func waitCtx(ctx context.Context, d time.Duration, label string) error {
	bar := newProgress(label, d)
	defer bar.done()
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case <-tick.C:
			bar.update()
		}
	}
}

func runRTSPFanout(ctx context.Context, e *env, o options) ([]result, error) {
	var res []result
	for round := 1; round <= o.rounds; round++ {
		for _, t := range e.targets() {
			rss0, err := rssBytes(t.pid)
			if err != nil {
				return nil, err
			}
			rs, err := dialAll(ctx, t.url, o.readers)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			label := fmt.Sprintf("%s round %d/%d, %d readers", t.name, round, o.rounds, o.readers)
			if err := waitCtx(ctx, o.warmup, label+" (warm-up)"); err != nil {
				closeAll(rs)
				return nil, err
			}
			drop0 := e.camgateDropped()
			cpu0, _ := cpuSeconds(t.pid)
			p0 := make([]uint64, len(rs))
			for i, r := range rs {
				p0[i] = r.packets.Load()
			}
			start := time.Now()
			if err := waitCtx(ctx, o.duration, label); err != nil {
				closeAll(rs)
				return nil, err
			}
			cpu1, _ := cpuSeconds(t.pid)
			secs := time.Since(start).Seconds()
			rss1, _ := rssBytes(t.pid)
			rates := make([]float64, len(rs))
			for i, r := range rs {
				rates[i] = float64(r.packets.Load()-p0[i]) / secs
			}
			closeAll(rs)
			slices.Sort(rates)
			best := rates[len(rates)-1]
			m := map[string]float64{
				"cpu_ms_per_reader_s": (cpu1 - cpu0) * 1000 / (secs * float64(o.readers)),
				"cpu_cores":           (cpu1 - cpu0) / secs,
				"mem_kib_per_reader":  float64(rss1-rss0) / 1024 / float64(o.readers),
				"pkts_s_min":          rates[0],
				"pkts_s_avg":          mean(rates),
				"loss_vs_best_pct":    100 * (1 - mean(rates)/math.Max(best, 1)),
			}
			if t.name == "camgate" {
				m["server_dropped_pkts"] = e.camgateDropped() - drop0
			}
			res = append(res, result{Target: t.name, Round: round, Metrics: m})
		}
	}
	return res, nil
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(max(len(v), 1))
}
