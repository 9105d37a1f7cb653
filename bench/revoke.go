package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/camgate/camgate/authz/token"
)

// runRevoke opens N RTSP sessions of distinct viewers, then deletes each
// viewer's grant through the admin API, one after the other, and measures
// for each the time from sending the DELETE to the moment its client sees
// the session closed. With -redis the grants are deleted on node A while the
// sessions play from node B. mediamtx has no revoke, so there is no
// comparison target.
func runRevoke(ctx context.Context, e *env, o options) ([]result, error) {
	admin, viewers, name := e.camgate(), e.camgate(), "camgate"
	if o.redis {
		viewers, name = e.nodes[1], "camgate A→B"
	}
	var res []result
	for round := 1; round <= o.rounds; round++ {
		m, err := revokeRound(ctx, e, o, admin, viewers, round)
		if err != nil {
			return nil, err
		}
		res = append(res, result{Target: name, Round: round, Metrics: m})
	}
	return res, nil
}

func revokeRound(ctx context.Context, e *env, o options, admin, viewers *node, round int) (map[string]float64, error) {
	n := o.readers
	subs := make([]string, n)
	for i := range subs {
		subs[i] = fmt.Sprintf("rv%d-%d", round, i)
	}
	bar := newProgress(fmt.Sprintf("round %d/%d: %d viewers and grants", round, o.rounds, n), n)
	err := forEach(ctx, n, 8, func(i int) error {
		defer bar.add(1)
		if err := admin.apiOK(ctx, http.MethodPut, "/subjects/"+subs[i], `{"kind":"user"}`); err != nil {
			return err
		}
		return admin.apiOK(ctx, http.MethodPut, "/grants/g-"+subs[i],
			`{"subject":"`+subs[i]+`","device":"cam","actions":["live"]}`)
	})
	bar.done()
	if err != nil {
		return nil, err
	}
	urls := make([]string, n)
	for i, sub := range subs {
		tok, err := token.MintHS256([]byte(benchSecret), sub, time.Hour, time.Now())
		if err != nil {
			return nil, err
		}
		urls[i] = fmt.Sprintf("rtsp://%s/cam?token=%s", viewers.rtsp, tok)
	}
	if admin != viewers {
		if err := waitAdmitted(ctx, urls[n-1]); err != nil {
			return nil, fmt.Errorf("node B does not admit a viewer granted on node A "+
				"(is multi-node Redis wired into the gateway?): %w", err)
		}
	}
	rs, err := dialURLs(ctx, urls)
	if err != nil {
		return nil, fmt.Errorf("opening sessions on %s: %w", viewers.name, err)
	}
	defer closeAll(rs)
	ended := make([]chan time.Time, n)
	for i, r := range rs {
		ended[i] = make(chan time.Time, 1)
		go func() { _ = r.c.Wait(); ended[i] <- time.Now() }()
	}
	if err := waitCtx(ctx, o.warmup, fmt.Sprintf("round %d/%d: %d sessions playing", round, o.rounds, n)); err != nil {
		return nil, err
	}
	return measureRevokes(ctx, admin, subs, ended)
}

// measureRevokes deletes the grants in order and collects the latencies.
// A session that ends before its own revoke counts as collateral (the
// gateway kicked the wrong viewer); one that never ends counts as not ended.
func measureRevokes(ctx context.Context, admin *node, subs []string, ended []chan time.Time) (map[string]float64, error) {
	n := len(subs)
	sent := make([]time.Time, n)
	endAt := make([]time.Time, n)
	var apiMs []float64
	collateral := 0
	bar := newProgress(fmt.Sprintf("revoking %d grants", n), n)
	for i, sub := range subs {
		select {
		case t := <-ended[i]:
			endAt[i] = t
			collateral++
		default:
		}
		sent[i] = time.Now()
		if err := admin.apiOK(ctx, http.MethodDelete, "/grants/g-"+sub, ""); err != nil {
			return nil, err
		}
		apiMs = append(apiMs, ms(time.Since(sent[i])))
		bar.add(1)
	}
	bar.done()
	deadline := time.After(10 * time.Second)
	var lat []float64
	notEnded := 0
	for i := range subs {
		if !endAt[i].IsZero() {
			continue
		}
		select {
		case t := <-ended[i]:
			lat = append(lat, ms(t.Sub(sent[i])))
		case <-deadline:
			notEnded++
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	slices.Sort(lat)
	slices.Sort(apiMs)
	return map[string]float64{
		"revoke_to_end_ms_p50": percentile(lat, 50),
		"revoke_to_end_ms_p99": percentile(lat, 99),
		"revoke_to_end_ms_max": percentile(lat, 100),
		"api_delete_ms_p50":    percentile(apiMs, 50),
		"sessions_not_ended":   float64(notEnded),
		"sessions_collateral":  float64(collateral),
	}, nil
}

// waitAdmitted polls until url can be played (a grant written on another
// node has reached this one).
func waitAdmitted(ctx context.Context, url string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := dial(url)
		if err == nil {
			r.c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// forEach runs f(0…n-1) with at most par at a time and returns the first error.
func forEach(ctx context.Context, n, par int, f func(i int) error) error {
	sem := make(chan struct{}, par)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return errors.Join(first, ctx.Err())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
