package ptz

import (
	"context"
	"errors"
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
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const ttl = 5 * time.Second
	user := func(id string) Holder { return Holder{ID: id, Kind: KindUser, Priority: 10} }
	pm := Holder{ID: "carol", Kind: KindPrivacyManager, Priority: 40}
	tests := []struct {
		name      string
		holder    Holder // holds the camera since t0, through node A
		who       Holder // asks through node B
		at        time.Duration
		wantOwner string // "" when refused
	}{
		{"free camera", Holder{}, user("alice"), 0, "alice"},
		{"renew by holder", user("alice"), user("alice"), 4 * time.Second, "alice"},
		{"held on A refuses B", user("alice"), user("bob"), 4 * time.Second, ""},
		{"lower priority refused", pm, user("bob"), time.Second, ""},
		{"higher priority takes over", user("alice"), pm, time.Second, "carol"},
		{"lapsed exactly at until", pm, user("bob"), ttl, "bob"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			prefix := fmt.Sprintf("camgate:test%d:lease:", i)
			a, b := &RedisLeases{Client: c, Prefix: prefix}, &RedisLeases{Client: c, Prefix: prefix}
			if tt.holder.ID != "" {
				if _, err := a.TryAcquire(ctx, "cam1", tt.holder, ttl, t0); err != nil {
					t.Fatal(err)
				}
			}
			now := t0.Add(tt.at)
			l, err := b.TryAcquire(ctx, "cam1", tt.who, ttl, now)
			if tt.wantOwner == "" {
				var held *ErrLeaseHeld
				if !errors.As(err, &held) || held.Holder != tt.holder || !held.Until.Equal(t0.Add(ttl)) {
					t.Fatalf("err = %v, want held by %+v until %v", err, tt.holder, t0.Add(ttl))
				}
				return
			}
			if err != nil || l.Holder.ID != tt.wantOwner || !l.Until.Equal(now.Add(ttl)) || l.Camera != "cam1" {
				t.Fatalf("lease %+v, %v; want %s until %v", l, err, tt.wantOwner, now.Add(ttl))
			}
			if pttl := c.PTTL(ctx, prefix+"cam1").Val(); pttl <= 0 || pttl > ttl {
				t.Fatalf("key TTL %v; want (0, %v]", pttl, ttl)
			}
		})
	}
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
