package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/jsonapi"
	"github.com/camgate/camgate/internal/redistest"
)

// BenchmarkCommit: one grant-sized mutation committed through the Lua
// script (revision check, feed append, record write), with the AOF fsynced
// on every write and once a second.
func BenchmarkCommit(b *testing.B) {
	for _, fsync := range []string{"always", "everysec"} {
		b.Run("appendfsync="+fsync, func(b *testing.B) {
			srv := redistest.Start(b, redistest.Options{AppendFsync: fsync})
			s := newStore(b, srv.Client(), "bench")
			data := []byte(`{"id":"g1","subject":"alice","device":"cam1","actions":["live","sound"],"condition":"always"}`)
			ctx := context.Background()
			b.ReportAllocs()
			var rev uint64
			for i := 0; b.Loop(); i++ {
				var err error
				rev, err = s.Commit(ctx, rev, []authz.Mutation{{Kind: "grants", ID: fmt.Sprint("g", i%1000), Data: data}})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoundTrip is what a Redis L2 decision-cache hit would cost at
// least: one GET of a small key on loopback. Compare with authz's cold
// evaluation (BenchmarkCheckCold in package authz).
func BenchmarkRoundTrip(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{NoPersistence: true})
	c := srv.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "camgate:l2probe", `{"allowed":true,"reason":"grant g1","valid_until":"2026-12-01T00:00:00Z"}`, time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Get(ctx, "camgate:l2probe").Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRemoteApply: commit on node A until node B's model shows it
// (B follows the change feed), one grant per iteration.
func BenchmarkRemoteApply(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	c := srv.Client()
	a := &authz.Service{Store: newStore(b, c, "apply")}
	bs := &authz.Service{Store: newStore(b, c, "apply")}
	for _, s := range []*authz.Service{a, bs} {
		if err := s.Initialize(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
	}
	got := make(chan uint64, 64)
	cancel := bs.Subscribe(func(inv authz.Invalidation) { got <- inv.Rev })
	defer cancel()
	root := authz.Caller{Root: true}
	do := func(parts []string, body string) {
		if _, err := (jsonapi.Handler{Service: a}).Handle(context.Background(), root, "PUT", parts, nil, []byte(body)); err != nil {
			b.Fatal(err)
		}
	}
	do([]string{"sites", "hq"}, `{}`)
	do([]string{"devices", "cam1"}, `{"site":"hq","kind":"camera","source":"builtin:demo"}`)
	do([]string{"subjects", "alice"}, `{"kind":"user"}`)
	for rev := uint64(0); rev < 3; { // B caught up with the setup
		rev = <-got
	}
	b.ResetTimer()
	for i := range b.N {
		do([]string{"grants", "g1"}, fmt.Sprintf(`{"subject":"alice","device":"cam1","actions":["live"],"not_after":"2030-01-01T00:00:%02dZ"}`, i%60))
		<-got
	}
}
