// Package storetest is the conformance suite every authz.Store backend runs:
// the embedded bbolt store and any shared backend (Redis) must behave the same.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/camgate/camgate/authz"
)

// Factory creates a fresh, empty backing (a file, a Redis key prefix) and
// returns a function that opens a Store on it. Calling open again after the
// previous store was closed must see the same data (a restart).
type Factory func(t *testing.T) (open func() (authz.Store, error))

// Run runs every conformance test against the backend.
func Run(t *testing.T, newBacking Factory) {
	t.Run("EmptyStore", func(t *testing.T) { testEmpty(t, newBacking) })
	t.Run("CommitAndLoad", func(t *testing.T) { testCommitLoad(t, newBacking) })
	t.Run("RevisionConflictChangesNothing", func(t *testing.T) { testConflict(t, newBacking) })
	t.Run("SurvivesReopen", func(t *testing.T) { testReopen(t, newBacking) })
	t.Run("ConcurrentCommitsOneWins", func(t *testing.T) { testConcurrent(t, newBacking) })
}

func open(t *testing.T, o func() (authz.Store, error)) authz.Store {
	t.Helper()
	s, err := o()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func load(t *testing.T, s authz.Store) (uint64, map[string]string) {
	t.Helper()
	rev, recs, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	m := make(map[string]string, len(recs))
	for _, r := range recs {
		m[r.Kind+"/"+r.ID] = string(r.Data)
	}
	return rev, m
}

func testEmpty(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	rev, m := load(t, s)
	if rev != 0 || len(m) != 0 {
		t.Fatalf("empty store: rev %d, %d records; want 0, 0", rev, len(m))
	}
}

func testCommitLoad(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	rev, err := s.Commit(ctx, 0, []authz.Mutation{
		{Kind: "sites", ID: "hq", Data: []byte(`{"name":"HQ"}`)},
		{Kind: "devices", ID: "cam1", Data: []byte(`{"site":"hq"}`)},
	})
	if err != nil || rev != 1 {
		t.Fatalf("Commit: rev %d err %v; want 1, nil", rev, err)
	}
	rev, err = s.Commit(ctx, 1, []authz.Mutation{
		{Kind: "devices", ID: "cam1", Data: nil},
		{Kind: "devices", ID: "cam2", Data: []byte(`{}`)},
		{Kind: "sites", ID: "hq", Data: []byte(`{"name":"HQ2"}`)},
	})
	if err != nil || rev != 2 {
		t.Fatalf("second Commit: rev %d err %v; want 2, nil", rev, err)
	}
	gotRev, m := load(t, s)
	want := map[string]string{"sites/hq": `{"name":"HQ2"}`, "devices/cam2": `{}`}
	if gotRev != 2 || fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("Load = %d %v; want 2 %v", gotRev, m, want)
	}
}

func testConflict(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Commit(ctx, 0, []authz.Mutation{{Kind: "k", ID: "a", Data: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Commit(ctx, 0, []authz.Mutation{{Kind: "k", ID: "b", Data: []byte("2")}})
	if !errors.Is(err, authz.ErrRevisionConflict) {
		t.Fatalf("stale Commit err = %v; want ErrRevisionConflict", err)
	}
	rev, m := load(t, s)
	if rev != 1 || len(m) != 1 {
		t.Fatalf("after conflict: rev %d records %v; want rev 1 and only k/a", rev, m)
	}
}

func testReopen(t *testing.T, f Factory) {
	o := f(t)
	s := open(t, o)
	if _, err := s.Commit(context.Background(), 0, []authz.Mutation{{Kind: "grants", ID: "g1", Data: []byte(`{"subject":"alice"}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, o)
	defer s.Close()
	rev, m := load(t, s)
	if rev != 1 || m["grants/g1"] != `{"subject":"alice"}` {
		t.Fatalf("after reopen: rev %d records %v", rev, m)
	}
}

func testConcurrent(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Commit(context.Background(), 0, []authz.Mutation{{Kind: "k", ID: fmt.Sprint(i), Data: []byte("x")}})
		}()
	}
	wg.Wait()
	var ok []int
	for i, err := range errs {
		if err == nil {
			ok = append(ok, i)
		} else if !errors.Is(err, authz.ErrRevisionConflict) {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	sort.Ints(ok)
	rev, m := load(t, s)
	if len(ok) != 1 || rev != 1 || len(m) != 1 {
		t.Fatalf("%d concurrent commits at rev 0: winners %v, rev %d, records %v; want exactly one", n, ok, rev, m)
	}
}
