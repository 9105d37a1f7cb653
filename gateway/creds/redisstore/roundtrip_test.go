package redisstore_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/camgate/camgate/gateway/creds"
	"github.com/camgate/camgate/gateway/creds/redisstore"
	"github.com/camgate/camgate/internal/redistest"
)

// countingStore counts the reads that reach Redis.
type countingStore struct {
	*redisstore.Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, id string) (creds.Credential, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, id)
}

// TestCachedVerifyMakesNoRoundTrip: once a credential was used, verifying it
// again (every DESCRIBE, SETUP and PLAY) reads nothing from Redis; a revoke
// on another node is seen once its change message drops the cached copy.
func TestCachedVerifyMakesNoRoundTrip(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	st := &countingStore{Store: redisstore.New(srv.Client(), "rt")}
	key := make([]byte, 32)
	a := &creds.Service{Store: st, Key: key}
	b := &creds.Service{Store: st, Key: key}
	for _, s := range []*creds.Service{a, b} {
		if err := s.Initialize(); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	c, err := a.Create(context.Background(), creds.CreateRequest{Subject: "alice"}, "root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.VerifyBasic(c.Username, c.Password); err != nil {
		t.Fatal(err)
	}
	before := st.gets.Load()
	for range 100 {
		if _, err := b.VerifyBasic(c.Username, c.Password); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.gets.Load() - before; n != 0 {
		t.Fatalf("%d store reads for 100 cached verifications, want 0", n)
	}
	if err := a.Revoke(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	b.Forget(c.ID) // what the gateway does on the revoke channel's message
	if _, err := b.VerifyBasic(c.Username, c.Password); err == nil {
		t.Fatal("node b still verifies a credential revoked on node a")
	}
}
