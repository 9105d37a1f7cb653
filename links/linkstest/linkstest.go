// Package linkstest is the conformance suite every links.Store backend runs:
// the embedded bbolt store and any shared backend (Redis) must behave the
// same.
package linkstest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/links"
)

// Factory creates a fresh, empty backing (a file, a Redis key prefix) and
// returns a function that opens a Store on it. Calling open again after the
// previous store was closed must see the same data (a restart).
type Factory func(t *testing.T) (open func() (links.Store, error))

// Run runs every conformance test against the backend.
func Run(t *testing.T, newBacking Factory) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, newBacking) })
	t.Run("LinkLifecycle", func(t *testing.T) { testLinkLifecycle(t, newBacking) })
	t.Run("CallbackErrorChangesNothing", func(t *testing.T) { testAbort(t, newBacking) })
	t.Run("KeyLifecycle", func(t *testing.T) { testKeys(t, newBacking) })
	t.Run("SurvivesReopen", func(t *testing.T) { testReopen(t, newBacking) })
	t.Run("ConcurrentUpdatesAreAtomic", func(t *testing.T) { testConcurrent(t, newBacking) })
}

func open(t *testing.T, o func() (links.Store, error)) links.Store {
	t.Helper()
	s, err := o()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sample(id string) links.Link {
	from, to := base.Add(-24*time.Hour), base
	return links.Link{
		ID: id, Device: "cam1", Actions: []string{"live", "archive"},
		NotBefore: base, NotAfter: base.Add(time.Hour), FootageFrom: &from, FootageTo: &to,
		MaxViewers: 3, Creator: "alice", CreatedAt: base, Enabled: true,
	}
}

func put(l links.Link) func(*links.Link) (*links.Link, error) {
	return func(cur *links.Link) (*links.Link, error) {
		if cur != nil {
			return nil, links.ErrExists
		}
		return &l, nil
	}
}

func sameLink(a, b links.Link) bool {
	eqT := func(x, y *time.Time) bool { return (x == nil && y == nil) || (x != nil && y != nil && x.Equal(*y)) }
	return a.ID == b.ID && a.Device == b.Device && len(a.Actions) == len(b.Actions) &&
		a.NotBefore.Equal(b.NotBefore) && a.NotAfter.Equal(b.NotAfter) &&
		eqT(a.FootageFrom, b.FootageFrom) && eqT(a.FootageTo, b.FootageTo) &&
		a.MaxViewers == b.MaxViewers && a.Creator == b.Creator && a.CreatedAt.Equal(b.CreatedAt) &&
		a.Enabled == b.Enabled && a.Deleted == b.Deleted
}

func testEmpty(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	if ls, err := s.ListLinks(ctx); err != nil || len(ls) != 0 {
		t.Fatalf("ListLinks on empty store: %d links, %v", len(ls), err)
	}
	if ks, err := s.ListKeys(ctx); err != nil || len(ks) != 0 {
		t.Fatalf("ListKeys on empty store: %d keys, %v", len(ks), err)
	}
	if _, err := s.GetLink(ctx, "nope"); !errors.Is(err, links.ErrNotFound) {
		t.Fatalf("GetLink of absent id: %v, want ErrNotFound", err)
	}
}

func testLinkLifecycle(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	want := sample("l1")
	if err := s.UpdateLink(ctx, "l1", put(want)); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := s.UpdateLink(ctx, "l1", put(want)); !errors.Is(err, links.ErrExists) {
		t.Fatalf("second create: %v, want the callback's ErrExists", err)
	}
	got, err := s.GetLink(ctx, "l1")
	if err != nil || !sameLink(got, want) {
		t.Fatalf("GetLink = %+v, %v; want %+v", got, err, want)
	}
	err = s.UpdateLink(ctx, "l1", func(cur *links.Link) (*links.Link, error) {
		cur.Enabled = false
		return cur, nil
	})
	if err != nil {
		t.Fatalf("disable: %v", err)
	}
	if got, _ := s.GetLink(ctx, "l1"); got.Enabled {
		t.Fatal("update not visible")
	}
	if err := s.UpdateLink(ctx, "l2", put(sample("l2"))); err != nil {
		t.Fatal(err)
	}
	if ls, _ := s.ListLinks(ctx); len(ls) != 2 {
		t.Fatalf("ListLinks: %d links, want 2", len(ls))
	}
	err = s.UpdateLink(ctx, "l1", func(*links.Link) (*links.Link, error) { return nil, nil })
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.GetLink(ctx, "l1"); !errors.Is(err, links.ErrNotFound) {
		t.Fatalf("GetLink after delete: %v", err)
	}
	if ls, _ := s.ListLinks(ctx); len(ls) != 1 || ls[0].ID != "l2" {
		t.Fatalf("ListLinks after delete: %+v", ls)
	}
}

func testAbort(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	if err := s.UpdateLink(ctx, "l1", put(sample("l1"))); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := s.UpdateLink(ctx, "l1", func(cur *links.Link) (*links.Link, error) {
		cur.Device = "changed"
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateLink returned %v, want the callback's error", err)
	}
	if got, _ := s.GetLink(ctx, "l1"); got.Device != "cam1" {
		t.Fatalf("aborted update changed the link: device %q", got.Device)
	}
	err = s.UpdateKey(ctx, "k1", func(*links.SigningKey) (*links.SigningKey, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateKey returned %v, want the callback's error", err)
	}
	if ks, _ := s.ListKeys(ctx); len(ks) != 0 {
		t.Fatalf("aborted key update stored %d keys", len(ks))
	}
}

func testKeys(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	priv := bytes.Repeat([]byte{7}, 64)
	k := links.SigningKey{KID: "k1", PrivateKey: priv, CreatedAt: base, RetireAfter: base.Add(time.Hour)}
	err := s.UpdateKey(ctx, "k1", func(cur *links.SigningKey) (*links.SigningKey, error) {
		if cur != nil {
			t.Error("cur is not nil for an absent key")
		}
		return &k, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := s.ListKeys(ctx)
	if err != nil || len(ks) != 1 || ks[0].KID != "k1" || !bytes.Equal(ks[0].PrivateKey, priv) ||
		!ks[0].CreatedAt.Equal(base) || !ks[0].RetireAfter.Equal(base.Add(time.Hour)) {
		t.Fatalf("ListKeys = %+v, %v", ks, err)
	}
	err = s.UpdateKey(ctx, "k1", func(cur *links.SigningKey) (*links.SigningKey, error) {
		cur.RetireAfter = base.Add(2 * time.Hour)
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ks, _ := s.ListKeys(ctx); !ks[0].RetireAfter.Equal(base.Add(2 * time.Hour)) {
		t.Fatalf("RetireAfter not updated: %v", ks[0].RetireAfter)
	}
	if err := s.UpdateKey(ctx, "k1", func(*links.SigningKey) (*links.SigningKey, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if ks, _ := s.ListKeys(ctx); len(ks) != 0 {
		t.Fatalf("key not deleted: %+v", ks)
	}
}

func testReopen(t *testing.T, f Factory) {
	o := f(t)
	s := open(t, o)
	ctx := context.Background()
	if err := s.UpdateLink(ctx, "l1", put(sample("l1"))); err != nil {
		t.Fatal(err)
	}
	k := links.SigningKey{KID: "k1", PrivateKey: []byte{1, 2, 3}, CreatedAt: base}
	if err := s.UpdateKey(ctx, "k1", func(*links.SigningKey) (*links.SigningKey, error) { return &k, nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, o)
	defer s.Close()
	if got, err := s.GetLink(ctx, "l1"); err != nil || !sameLink(got, sample("l1")) {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if ks, err := s.ListKeys(ctx); err != nil || len(ks) != 1 || ks[0].KID != "k1" {
		t.Fatalf("keys after reopen: %+v, %v", ks, err)
	}
}

// testConcurrent: N writers each increment a counter held in the record; an
// update lost to a race shows as a final count below N.
func testConcurrent(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	l := sample("l1")
	l.MaxViewers = 0
	if err := s.UpdateLink(ctx, "l1", put(l)); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := s.UpdateLink(ctx, "l1", func(cur *links.Link) (*links.Link, error) {
				cur.MaxViewers++
				return cur, nil
			})
			if err != nil {
				t.Error(err)
			}
			err = s.UpdateKey(ctx, "k", func(cur *links.SigningKey) (*links.SigningKey, error) {
				if cur == nil {
					cur = &links.SigningKey{KID: "k"}
				}
				cur.PrivateKey = append(cur.PrivateKey, 1)
				return cur, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _ := s.GetLink(ctx, "l1"); got.MaxViewers != n {
		t.Fatalf("after %d concurrent increments the counter is %d", n, got.MaxViewers)
	}
	if ks, _ := s.ListKeys(ctx); len(ks) != 1 || len(ks[0].PrivateKey) != n {
		t.Fatalf("after %d concurrent key updates: %+v", n, ks)
	}
}
