package ptz

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/redistest"
)

// TestRedisLeases: the MemoryLeases rules hold on Redis, between two nodes
// (two stores on one Redis), and the key lapses with the lease.
func TestRedisLeases(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := srv.Client()
	prefix := func(i int) string { return fmt.Sprintf("camgate:test%d:lease:", i) }
	runLeaseRules(t, func(i int) (LeaseStore, LeaseStore) {
		return &RedisLeases{Client: c, Prefix: prefix(i)}, &RedisLeases{Client: c, Prefix: prefix(i)}
	}, func(t *testing.T, i int, ttl time.Duration) {
		if pttl := c.PTTL(context.Background(), prefix(i)+"cam1").Val(); pttl <= 0 || pttl > ttl {
			t.Fatalf("key TTL %v; want (0, %v]", pttl, ttl)
		}
	})
}

func TestRedisLeasesReleaseAndRace(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := srv.Client()
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	a, b := NewRedisLeases(c), NewRedisLeases(c)
	alice, bob := Holder{ID: "alice", Kind: KindUser, Priority: 10}, Holder{ID: "bob", Kind: KindUser, Priority: 10}
	if _, err := a.TryAcquire(ctx, "cam1", alice, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx, "cam1", bob); err != nil {
		t.Fatal(err)
	}
	if _, err := b.TryAcquire(ctx, "cam1", bob, time.Minute, now); err == nil {
		t.Fatal("bob released alice's lease")
	}
	if err := b.Release(ctx, "cam1", alice); err != nil {
		t.Fatal(err)
	}
	if _, err := b.TryAcquire(ctx, "cam1", bob, time.Minute, now); err != nil {
		t.Fatalf("after alice released: %v", err)
	}

	// Racing for a free camera from several nodes: exactly one wins.
	const n = 8
	var wg sync.WaitGroup
	wins := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := Holder{ID: fmt.Sprint("u", i), Kind: KindUser, Priority: 10}
			if _, err := NewRedisLeases(c).TryAcquire(ctx, "cam2", h, time.Minute, now); err == nil {
				wins <- h.ID
			}
		}()
	}
	wg.Wait()
	close(wins)
	if len(wins) != 1 {
		t.Fatalf("%d holders won a free camera; want 1", len(wins))
	}
}
