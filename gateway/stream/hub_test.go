package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/internal/poll"
)

// fakeSource describes itself, then blocks until cancelled or told to fail.
type fakeSource struct {
	runs   *atomic.Int32
	active *atomic.Int32
	fail   chan error
}

func (f fakeSource) Run(ctx context.Context, sink source.Sink) error {
	f.runs.Add(1)
	f.active.Add(1)
	defer f.active.Add(-1)
	if err := sink.SetDescription(testDesc()); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-f.fail:
		return err
	}
}

type hubFixture struct {
	hub          *Hub
	runs, active atomic.Int32
	fail         chan error
	mu           sync.Mutex
	known        map[string]bool
}

func newHubFixture(t *testing.T, linger time.Duration) *hubFixture {
	f := &hubFixture{fail: make(chan error, 1), known: map[string]bool{"cam1": true}}
	f.hub = &Hub{Linger: linger, BackoffMin: 10 * time.Millisecond, ReadyTimeout: 2 * time.Second,
		Sources: func(camera string) (source.Source, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if !f.known[camera] {
				return nil, fmt.Errorf("%w: %s", ErrUnknownCamera, camera)
			}
			return fakeSource{runs: &f.runs, active: &f.active, fail: f.fail}, nil
		}}
	if err := f.hub.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.hub.Close)
	return f
}

func TestHubOneUpstreamPerCameraAndLinger(t *testing.T) {
	f := newHubFixture(t, 50*time.Millisecond)
	s1, rel1, err := f.hub.Acquire(context.Background(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	s2, rel2, err := f.hub.Acquire(context.Background(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 || f.runs.Load() != 1 {
		t.Fatalf("two readers: same stream %v, upstream runs %d (want one pull)", s1 == s2, f.runs.Load())
	}
	rel1()
	rel1() // idempotent
	rel2()
	poll.Until(t, "the upstream to close after the linger", func() bool { return f.active.Load() == 0 })
	if _, _, err := f.hub.Acquire(context.Background(), "cam1"); err != nil || f.runs.Load() != 2 {
		t.Fatalf("after the linger a new viewer re-opens the upstream: err %v runs %d", err, f.runs.Load())
	}
}

func TestHubUnknownCamera(t *testing.T) {
	f := newHubFixture(t, time.Second)
	if _, _, err := f.hub.Acquire(context.Background(), "nope"); !errors.Is(err, ErrUnknownCamera) {
		t.Fatalf("unknown camera: %v", err)
	}
}

func TestHubReconnectsAndKeepsTheStream(t *testing.T) {
	f := newHubFixture(t, time.Second)
	s, rel, err := f.hub.Acquire(context.Background(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	f.fail <- errors.New("camera rebooted")
	poll.Until(t, "a reconnect", func() bool { return f.runs.Load() == 2 && f.active.Load() == 1 })
	if st := f.hub.Stats(); len(st) != 1 || st[0].Reconnects != 1 || st[0].LastError != "camera rebooted" {
		t.Fatalf("stats %+v", st)
	}
	s2, rel2, err := f.hub.Acquire(context.Background(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	defer rel2()
	if s2 != s {
		t.Fatal("a reconnect replaced the stream: its viewers would have been dropped")
	}
}

// Reconnect dials the upstream again at once, through Sources, and keeps
// the stream (its readers) and the reconnect count of failures as it was.
func TestHubReconnectKeepsReaders(t *testing.T) {
	f := newHubFixture(t, time.Second)
	f.hub.BackoffMin = time.Hour // a failure's backoff would stall the test
	s, rel, err := f.hub.Acquire(context.Background(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	f.hub.Reconnect("cam1")
	poll.Until(t, "a second dial", func() bool { return f.runs.Load() == 2 && f.active.Load() == 1 })
	s2, rel2, err := f.hub.Acquire(context.Background(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	defer rel2()
	if s2 != s {
		t.Fatal("Reconnect replaced the stream")
	}
	if st := f.hub.Stats(); len(st) != 1 || st[0].Reconnects != 0 {
		t.Fatalf("a requested reconnect counted as a failure: %+v", st)
	}
	f.hub.Reconnect("nope") // no stream: nothing happens
}

func TestHubReadyTimeout(t *testing.T) {
	hub := &Hub{ReadyTimeout: 50 * time.Millisecond, Sources: func(string) (source.Source, error) {
		return silentSource{}, nil
	}}
	if err := hub.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	if _, _, err := hub.Acquire(context.Background(), "cam1"); !errors.Is(err, ErrUpstreamUnavailable) {
		t.Fatalf("an upstream that never describes itself: %v", err)
	}
}

// silentSource never describes itself (a camera that accepts the connection
// and sends nothing).
type silentSource struct{}

func (silentSource) Run(ctx context.Context, _ source.Sink) error { <-ctx.Done(); return nil }
