package authz

import (
	"testing"
	"time"

	"golang.org/x/sync/singleflight"
)

// BenchmarkConcurrentMiss decides whether coalescing concurrent cache misses
// for the same pair (singleflight) pays off: every operation invalidates L1
// and decides again, from many goroutines at once, so misses on the same
// pair overlap all the time ("parallel", 16 goroutines on 2 cores), or one
// at a time ("serial": what a lone miss pays). "direct" evaluates each miss;
// "singleflight" lets one evaluation answer the overlapping ones.
func BenchmarkConcurrentMiss(b *testing.B) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	s := &Service{Store: &memStore{}, Now: func() time.Time { return now }}
	if err := s.Initialize(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	ctx, root := b.Context(), Caller{Root: true}
	for _, put := range []func() error{
		func() error { _, _, err := s.PutOrg(ctx, root, Org{ID: "acme", Name: "Acme"}); return err },
		func() error { _, _, err := s.PutSite(ctx, root, Site{ID: "hq", Org: "acme", Name: "HQ"}); return err },
		func() error {
			_, _, err := s.PutSite(ctx, root, Site{ID: "lobby", Parent: "hq", Name: "Lobby"})
			return err
		},
		func() error {
			_, _, err := s.PutDevice(ctx, root, Device{ID: "cam2", Site: "lobby", Kind: DeviceCamera, Source: "builtin:demo"})
			return err
		},
		func() error {
			_, _, err := s.PutSubject(ctx, root, Subject{ID: "alice", Kind: SubjectUser, Org: "acme"})
			return err
		},
		func() error { _, _, err := s.PutSubject(ctx, root, Subject{ID: "bob", Kind: SubjectUser}); return err },
		func() error {
			_, _, err := s.PutGrant(ctx, root, Grant{ID: "g1", Subject: "alice", Site: "hq", Actions: []string{"live", "sound"}})
			return err
		},
		func() error {
			_, _, err := s.PutGroup(ctx, root, Group{ID: "crew", Members: []string{"alice", "bob"}})
			return err
		},
		func() error {
			_, _, err := s.PutGrant(ctx, root, Grant{ID: "g2", Subject: "crew", Site: "lobby", Role: "site_viewer"})
			return err
		},
	} {
		if err := put(); err != nil {
			b.Fatal(err)
		}
	}
	var sf singleflight.Group
	for _, tc := range []struct {
		name   string
		decide func() *entry
	}{
		{"direct", func() *entry { return s.entry("alice", "cam2", now) }},
		{"singleflight", func() *entry {
			if e := s.cache.get("alice", "cam2", now.UnixNano()); e != nil {
				return e
			}
			v, _, _ := sf.Do("alice\x00cam2", func() (any, error) { return s.entry("alice", "cam2", now), nil })
			return v.(*entry)
		}},
	} {
		b.Run(tc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.cache.epoch.Add(1)
				if !tc.decide().decision(ActionLive, now.UnixNano(), -1).Allowed {
					b.Fatal("denied")
				}
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s.cache.epoch.Add(1)
					if !tc.decide().decision(ActionLive, now.UnixNano(), -1).Allowed {
						b.Error("denied")
						return
					}
				}
			})
		})
	}
}
