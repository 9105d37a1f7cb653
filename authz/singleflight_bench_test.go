package authz

import (
	"testing"

	"golang.org/x/sync/singleflight"
)

// BenchmarkConcurrentMiss decides whether coalescing concurrent cache misses
// for the same pair (singleflight) pays off: every operation invalidates L1
// and decides again, from many goroutines at once, so misses on the same
// pair overlap all the time ("parallel", 16 goroutines on 2 cores), or one
// at a time ("serial": what a lone miss pays). "direct" evaluates each miss;
// "singleflight" lets one evaluation answer the overlapping ones.
func BenchmarkConcurrentMiss(b *testing.B) {
	h := benchHarness(b, &memStore{})
	h.base()
	h.must(root, "PUT", "/grants/g1", map[string]any{"subject": "alice", "site": "hq", "actions": []string{"live", "sound"}})
	h.must(root, "PUT", "/groups/crew", map[string]any{"members": []string{"alice", "bob"}})
	h.must(root, "PUT", "/grants/g2", map[string]any{"subject": "crew", "site": "lobby", "role": "site_viewer"})
	now := h.clk.Now()
	s := h.s
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
