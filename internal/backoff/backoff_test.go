package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestDelaysGrowWithJitterWithinBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    float64
	}{{"low", 0}, {"mid", 0.5}, {"high", 0.999999}} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Backoff{Min: 100 * time.Millisecond, Max: time.Second, Rand: func() float64 { return tc.r }}
			steps := []time.Duration{100, 200, 400, 800, 1000, 1000}
			for i, s := range steps {
				s *= time.Millisecond
				d := b.Delay()
				if d < s/2 || d > s {
					t.Fatalf("delay %d = %v, want within [%v, %v]", i, d, s/2, s)
				}
			}
		})
	}
}

func TestJitterSpreadsNodes(t *testing.T) {
	// Two nodes with different random sources must not pick the same delay.
	a := &Backoff{Rand: func() float64 { return 0.1 }}
	b := &Backoff{Rand: func() float64 { return 0.9 }}
	if a.Delay() == b.Delay() {
		t.Fatal("jitter did not spread the delays")
	}
	// The default source also spreads (probabilistically certain over 64 draws).
	seen := map[time.Duration]bool{}
	for range 64 {
		var c Backoff
		seen[c.Delay()] = true
	}
	if len(seen) < 2 {
		t.Fatal("default random source gave the same delay 64 times")
	}
}

func TestResetAndDefaults(t *testing.T) {
	b := &Backoff{Rand: func() float64 { return 0.999999 }}
	for range 10 {
		b.Delay()
	}
	if d := b.Delay(); d > DefaultMax || d < DefaultMax/2 {
		t.Fatalf("capped delay = %v, want near %v", d, DefaultMax)
	}
	b.ResetAfter(time.Second) // short run: keep the step
	if d := b.Delay(); d < DefaultMax/2 {
		t.Fatalf("ResetAfter(short) reset the step: %v", d)
	}
	b.ResetAfter(DefaultMax + time.Second)
	if d := b.Delay(); d > DefaultMin {
		t.Fatalf("after reset delay = %v, want ≤ %v", d, DefaultMin)
	}
	inverted := &Backoff{Min: time.Second, Max: time.Millisecond, Rand: func() float64 { return 0.999999 }}
	if d := inverted.Delay(); d > time.Second || d < time.Second/2 {
		t.Fatalf("Max below Min: delay %v", d)
	}
}

func TestSleepWaitsOrStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b Backoff
		start := time.Now()
		if err := b.Sleep(t.Context(), 3*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Fatalf("slept %v", got)
		}
		ctx, cancel := context.WithCancel(t.Context())
		go func() { time.Sleep(time.Second); cancel() }()
		start = time.Now()
		if err := b.Sleep(ctx, time.Hour); err != context.Canceled {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Fatalf("cancelled after %v", got)
		}
	})
}
