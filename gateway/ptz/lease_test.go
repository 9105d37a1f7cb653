package ptz

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runLeaseRules checks the lease rules on a LeaseStore implementation:
// stores(i) returns two stores over the same state for case i (the holder
// acquires through the first, the asker through the second: two nodes for a
// shared store); check, when set, runs after a granted lease.
func runLeaseRules(t *testing.T, stores func(i int) (LeaseStore, LeaseStore), check func(t *testing.T, i int, ttl time.Duration)) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const ttl = 5 * time.Second
	user := func(id string) Holder { return Holder{ID: id, Kind: KindUser, Priority: 10} }
	pm := Holder{ID: "carol", Kind: KindPrivacyManager, Priority: 40}
	tests := []struct {
		name      string
		holder    Holder // holds the camera since t0
		who       Holder
		at        time.Duration // after t0
		wantOwner string        // "" when refused
	}{
		{"free camera", Holder{}, user("alice"), 0, "alice"},
		{"renew by holder", user("alice"), user("alice"), 4 * time.Second, "alice"},
		{"equal priority refused", user("alice"), user("bob"), 4 * time.Second, ""},
		{"lower priority refused", pm, user("bob"), time.Second, ""},
		{"higher priority takes over", user("alice"), pm, time.Second, "carol"},
		{"lapsed exactly at until", pm, user("bob"), ttl, "bob"},
		{"same id, other kind is another holder", user("alice"), Holder{ID: "alice", Kind: KindLink, Priority: 5}, time.Second, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			a, b := stores(i)
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
			// A take-over names whom it took the camera from; a grant of a
			// free, lapsed or own lease names nobody.
			tookOver := tt.holder.ID != "" && tt.at < ttl && !tt.holder.Same(tt.who)
			if (l.TakenFrom != nil) != tookOver || (tookOver && *l.TakenFrom != tt.holder) {
				t.Fatalf("TakenFrom %+v, want a take-over from %+v: %v", l.TakenFrom, tt.holder, tookOver)
			}
			// Other cameras are independent.
			if _, err := b.TryAcquire(ctx, "cam2", user("zed"), ttl, now); err != nil {
				t.Fatalf("cam2: %v", err)
			}
			if check != nil {
				check(t, i, ttl)
			}
		})
	}
}

func TestMemoryLeases(t *testing.T) {
	runLeaseRules(t, func(int) (LeaseStore, LeaseStore) {
		m := NewMemoryLeases()
		return m, m
	}, nil)
}

func TestMemoryLeasesOneWinnerUnderRace(t *testing.T) {
	m, now := NewMemoryLeases(), time.Now()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			h := Holder{ID: strconv.Itoa(i), Kind: KindUser, Priority: 10}
			if _, err := m.TryAcquire(context.Background(), "cam1", h, time.Second, now); err == nil {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d holders won a free camera at once, want 1", wins.Load())
	}
}

func BenchmarkLeaseAcquire(b *testing.B) {
	ctx, now := context.Background(), time.Now()
	h := Holder{ID: "alice", Kind: KindUser, Priority: 10}
	b.Run("renew", func(b *testing.B) {
		m := NewMemoryLeases()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.TryAcquire(ctx, "cam1", h, 5*time.Second, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("refused", func(b *testing.B) {
		m := NewMemoryLeases()
		if _, err := m.TryAcquire(ctx, "cam1", h, time.Hour, now); err != nil {
			b.Fatal(err)
		}
		bob := Holder{ID: "bob", Kind: KindUser, Priority: 10}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.TryAcquire(ctx, "cam1", bob, 5*time.Second, now); err == nil {
				b.Fatal("acquired a held camera")
			}
		}
	})
	b.Run("parallel_cameras", func(b *testing.B) {
		m := NewMemoryLeases()
		cams := make([]string, 64)
		for i := range cams {
			cams[i] = "cam" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := m.TryAcquire(ctx, cams[i%len(cams)], h, 5*time.Second, now); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
}
