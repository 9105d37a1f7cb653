// Package backoff spaces out reconnect attempts: exponential steps from Min
// to Max with "equal jitter" (each delay is uniform in [step/2, step]), so
// nodes that lost the same camera or the same Redis at the same moment do
// not come back in lockstep. A Backoff never gives up: the loops that use it
// (upstream pulls, recorders, HLS muxers, the authz change-feed follower)
// run until their context ends.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Defaults for a zero Backoff.
const (
	DefaultMin = 250 * time.Millisecond
	DefaultMax = 10 * time.Second
)

// Clock makes timers; tests inject one (or run inside testing/synctest).
type Clock interface {
	NewTimer(d time.Duration) *time.Timer
}

type realClock struct{}

func (realClock) NewTimer(d time.Duration) *time.Timer { return time.NewTimer(d) }

// Backoff is one loop's delay state. It is not safe for concurrent use:
// each reconnect loop owns its own.
type Backoff struct {
	Min time.Duration // first step; default DefaultMin
	Max time.Duration // largest step; default DefaultMax (raised to Min if below it)
	// Rand returns a number in [0, 1); default math/rand/v2.Float64.
	Rand func() float64
	// Clock makes the timers of Sleep; default the real clock.
	Clock Clock

	step time.Duration
}

func (b *Backoff) bounds() (lo, hi time.Duration) {
	lo, hi = b.Min, b.Max
	if lo <= 0 {
		lo = DefaultMin
	}
	if hi <= 0 {
		hi = DefaultMax
	}
	return lo, max(lo, hi)
}

// Delay returns the next delay and doubles the step, up to Max.
func (b *Backoff) Delay() time.Duration {
	lo, hi := b.bounds()
	if b.step < lo {
		b.step = lo
	}
	step := b.step
	b.step = min(step*2, hi)
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	half := step / 2
	return half + time.Duration(r()*float64(step-half))
}

// Reset starts the steps again from Min (after a connection that held).
func (b *Backoff) Reset() { b.step = 0 }

// ResetAfter resets when a run lasted longer than Max: a stream that played
// for a while and then ended is retried at once, not after the last step.
func (b *Backoff) ResetAfter(ran time.Duration) {
	if _, hi := b.bounds(); ran > hi {
		b.Reset()
	}
}

// Sleep waits d or until ctx ends, and returns ctx.Err() in that case.
func (b *Backoff) Sleep(ctx context.Context, d time.Duration) error {
	c := b.Clock
	if c == nil {
		c = realClock{}
	}
	t := c.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
