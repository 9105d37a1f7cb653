// Package credstest is the conformance suite every creds.Store backend runs:
// the embedded bbolt store and the shared Redis store must behave the same.
package credstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/creds"
)

// Factory creates a fresh, empty backing and returns a function that opens a
// Store on it; opening again after Close must see the same data.
type Factory func(t *testing.T) (open func() (creds.Store, error))

// Run runs every conformance test against the backend.
func Run(t *testing.T, f Factory) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, f) })
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, f) })
	t.Run("CallbackErrorChangesNothing", func(t *testing.T) { testAbort(t, f) })
	t.Run("SurvivesReopen", func(t *testing.T) { testReopen(t, f) })
	t.Run("ConcurrentUpdatesAreAtomic", func(t *testing.T) { testConcurrent(t, f) })
}

func open(t *testing.T, o func() (creds.Store, error)) creds.Store {
	t.Helper()
	s, err := o()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sample(id string) creds.Credential {
	return creds.Credential{ID: id, Subject: "alice", Label: "NVR hall", CreatedAt: base, CreatedBy: "root",
		NotAfter: base.Add(time.Hour), Salt: []byte("0123456789abcdef"), BasicHash: bytes.Repeat([]byte{7}, 32),
		Realm: "camgate", SealedHA1: []byte("sealed"), KeyID: "k1"}
}

func put(c creds.Credential) func(*creds.Credential) (*creds.Credential, error) {
	return func(cur *creds.Credential) (*creds.Credential, error) {
		if cur != nil {
			return nil, creds.ErrExists
		}
		return &c, nil
	}
}

func same(a, b creds.Credential) bool {
	return a.ID == b.ID && a.Subject == b.Subject && a.Link == b.Link && a.Label == b.Label &&
		a.CreatedAt.Equal(b.CreatedAt) && a.CreatedBy == b.CreatedBy && a.NotAfter.Equal(b.NotAfter) &&
		a.LastUsed.Equal(b.LastUsed) && bytes.Equal(a.Salt, b.Salt) && bytes.Equal(a.BasicHash, b.BasicHash) &&
		a.Realm == b.Realm && bytes.Equal(a.SealedHA1, b.SealedHA1) && a.KeyID == b.KeyID
}

func testEmpty(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	if l, err := s.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List on an empty store: %d, %v", len(l), err)
	}
	if _, err := s.Get(ctx, "cgnope2345"); !errors.Is(err, creds.ErrNotFound) {
		t.Fatalf("Get of an absent id: %v, want ErrNotFound", err)
	}
}

func testLifecycle(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	c := sample("cgaaaa2345")
	if err := s.Update(ctx, c.ID, put(c)); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, c.ID, put(c)); !errors.Is(err, creds.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists unwrapped", err)
	}
	got, err := s.Get(ctx, c.ID)
	if err != nil || !same(got, c) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, c)
	}
	got.Label = "changed" // a copy
	if again, _ := s.Get(ctx, c.ID); again.Label != c.Label {
		t.Fatal("Get returned shared state")
	}
	used := base.Add(time.Minute)
	if err := s.Update(ctx, c.ID, func(cur *creds.Credential) (*creds.Credential, error) {
		cur.LastUsed = used
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	l, err := s.List(ctx)
	if err != nil || len(l) != 1 || !l[0].LastUsed.Equal(used) {
		t.Fatalf("List after touch = %+v, %v", l, err)
	}
	if err := s.Update(ctx, c.ID, func(*creds.Credential) (*creds.Credential, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, c.ID); !errors.Is(err, creds.ErrNotFound) {
		t.Fatalf("Get after delete: %v", err)
	}
}

func testAbort(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	c := sample("cgbbbb2345")
	if err := s.Update(ctx, c.ID, put(c)); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := s.Update(ctx, c.ID, func(cur *creds.Credential) (*creds.Credential, error) {
		cur.Subject = "mallory"
		return nil, boom
	})
	if !errors.Is(err, boom) || err.Error() != "boom" {
		t.Fatalf("callback error came back as %v", err)
	}
	if got, _ := s.Get(ctx, c.ID); !same(got, c) {
		t.Fatalf("aborted update changed the record: %+v", got)
	}
}

func testReopen(t *testing.T, f Factory) {
	o := f(t)
	s := open(t, o)
	c := sample("cgcccc2345")
	if err := s.Update(context.Background(), c.ID, put(c)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, o)
	defer s.Close()
	if got, err := s.Get(context.Background(), c.ID); err != nil || !same(got, c) {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

func testConcurrent(t *testing.T, f Factory) {
	s := open(t, f(t))
	defer s.Close()
	ctx := context.Background()
	c := sample("cgdddd2345")
	c.Label = ""
	if err := s.Update(ctx, c.ID, put(c)); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Update(ctx, c.ID, func(cur *creds.Credential) (*creds.Credential, error) {
				cur.Label += fmt.Sprintf("%x", i%16)
				return cur, nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Get(ctx, c.ID); len(got.Label) != n {
		t.Fatalf("label %q: %d of %d updates kept", got.Label, len(got.Label), n)
	}
}
