package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func benchHarness(b *testing.B, st Store) *harness {
	t := &testing.T{}
	h := &harness{t: t, clk: &clock{now: t0}}
	h.s = &Service{Store: st, Now: h.clk.Now}
	if st == nil {
		h.s.DataDir = b.TempDir()
	}
	if err := h.s.Initialize(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.s.Close)
	return h
}

// BenchmarkCheckL1Hit: the hot path of every RTSP PLAY and HLS segment, for a
// subject with a direct grant on a parent site.
func BenchmarkCheckL1Hit(b *testing.B) {
	h := benchHarness(b, &memStore{})
	h.base()
	h.must(root, "PUT", "/grants/g1", map[string]any{"subject": "alice", "site": "hq", "actions": []string{"live", "sound"}})
	benchHit(b, h, "alice", "cam2", ActionLive)
}

// BenchmarkCheckL1HitAllRules: the same with every kind of rule in the entry
// (group role, armed and scheduled grants, an accepted share, footage limit),
// the allowing term last, and sound (rule 12: three lookups).
func BenchmarkCheckL1HitAllRules(b *testing.B) {
	h := benchHarness(b, &memStore{})
	h.base()
	h.must(root, "PUT", "/subjects/carol", map[string]any{"kind": "user", "email": "carol@example.com"})
	h.must(root, "PUT", "/groups/crew", map[string]any{"members": []string{"bob"}})
	h.must(root, "PUT", "/grants/g0", map[string]any{"subject": "crew", "site": "hq", "role": "no_access"})
	h.must(root, "PUT", "/grants/g1", map[string]any{"subject": "bob", "site": "lobby", "actions": []string{"ptz"}, "condition": "armed"})
	h.must(root, "PUT", "/grants/g2", map[string]any{"subject": "bob", "device": "cam2", "actions": []string{"download"}, "footage_within": "24h",
		"schedule": []map[string]any{{"days": []string{"wed"}, "from": "08:00", "to": "20:00", "tz": "Europe/Kyiv"}}})
	h.must(root, "PUT", "/grants/own", map[string]any{"subject": "carol", "device": "cam2", "role": "site_admin"})
	res := h.must(root, "POST", "/shares", map[string]any{"device": "cam2", "owner": "carol", "recipient_email": "bob@example.com", "actions": []string{"live", "archive"}}).(map[string]any)
	h.must(viewer("bob"), "POST", "/shares/"+res["id"].(string)+"/accept", nil)
	h.must(root, "PUT", "/grants/g3", map[string]any{"subject": "bob", "site": "hq", "actions": []string{"sound"}, "not_after": t0.Add(time.Hour)})
	benchHit(b, h, "bob", "cam2", ActionSound)
}

func benchHit(b *testing.B, h *harness, subject, device string, a Action) {
	now := h.clk.Now()
	if d := h.s.Check(subject, device, a, now); !d.Allowed {
		b.Fatalf("setup: %s must have %v on %s: %+v", subject, a, device, d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !h.s.Check(subject, device, a, now).Allowed {
			b.Fatal("denied")
		}
	}
}

// BenchmarkCheckL1HitParallel measures shard contention on 2 cores.
func BenchmarkCheckL1HitParallel(b *testing.B) {
	h := benchHarness(b, &memStore{})
	h.base()
	h.must(root, "PUT", "/grants/g1", map[string]any{"subject": "alice", "site": "hq", "actions": []string{"live"}})
	now := h.clk.Now()
	h.s.Check("alice", "cam2", ActionLive, now)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.s.Check("alice", "cam2", ActionLive, now)
		}
	})
}

// bigModel builds the scale fixture directly in memory: 10k devices in 100
// sites (10 trees of 10), 100k subjects, 1k groups of 100, 1M grants.
func bigModel(b *testing.B) *Service {
	const nSites, nDevices, nSubjects, nGroups, grantsPer = 100, 10_000, 100_000, 1_000, 10
	s := &Service{Store: &memStore{}, Now: func() time.Time { return t0 }}
	if err := s.Initialize(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	put := func(kind string, obj any) {
		if err := s.PutModelForTest(kind, obj); err != nil {
			b.Fatal(err)
		}
	}
	put(KindOrgs, &Org{ID: "acme", RestrictionTZ: "-05:00"})
	for i := range nSites {
		st := &Site{ID: fmt.Sprint("s", i), Org: "acme", AlarmWindow: Duration(30 * time.Minute)}
		if i%10 != 0 {
			st.Parent = fmt.Sprint("s", i-i%10)
		}
		put(KindSites, st)
	}
	for i := range nDevices {
		id := fmt.Sprint("d", i)
		put(KindDevices, &Device{ID: id, Site: fmt.Sprint("s", i%nSites), Kind: DeviceCamera})
	}
	for i := range nSubjects {
		id := fmt.Sprint("u", i)
		put(KindSubjects, &Subject{ID: id, Kind: SubjectUser})
	}
	for i := range nGroups {
		g := &Group{ID: fmt.Sprint("grp", i)}
		for j := range 100 {
			g.Members = append(g.Members, fmt.Sprint("u", (i*100+j)%nSubjects))
		}
		put(KindGroups, g)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	live := []string{"live", "sound"}
	sched := []Window{{Days: []string{"mon", "tue", "wed"}, From: "08:00", To: "18:00", TZ: "Europe/Kyiv"}}
	na := t0.Add(time.Hour)
	for i := range nSubjects * grantsPer {
		g := &Grant{ID: fmt.Sprint("g", i), Subject: fmt.Sprint("u", i/grantsPer), Actions: live}
		switch i % 10 {
		case 0:
			g.Site, g.Actions, g.Role = fmt.Sprint("s", rng.IntN(nSites)), nil, "site_viewer"
		case 1:
			g.Subject, g.Site = fmt.Sprint("grp", rng.IntN(nGroups)), fmt.Sprint("s", rng.IntN(nSites))
		case 2:
			g.Device, g.Schedule = fmt.Sprint("d", rng.IntN(nDevices)), sched
		case 3:
			g.Device, g.NotAfter, g.Condition = fmt.Sprint("d", rng.IntN(nDevices)), &na, "armed"
		default:
			g.Device = fmt.Sprint("d", rng.IntN(nDevices))
		}
		put(KindGrants, g)
	}
	return s
}

// BenchmarkColdDecisionScale: a cache-miss evaluation on 10k devices, 100k
// subjects, 1M grants; reports p50/p99 per decision.
func BenchmarkColdDecisionScale(b *testing.B) {
	s := bigModel(b)
	rng := rand.New(rand.NewPCG(3, 4))
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		subj, dev := fmt.Sprint("u", rng.IntN(100_000)), fmt.Sprint("d", rng.IntN(10_000))
		start := time.Now()
		s.EvaluateFreshForTest(subj, dev, ActionLive, t0, -1)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// timedStore records when the last Commit returned (durable), so the
// benchmark can separate the fsync from the invalidation pipeline.
type timedStore struct {
	Store
	committed time.Time
}

func (s *timedStore) Commit(ctx context.Context, rev uint64, muts []Mutation) (uint64, error) {
	r, err := s.Store.Commit(ctx, rev, muts)
	s.committed = time.Now()
	return r, err
}

// BenchmarkWriteToInvalidation: from the API call of a write to its
// invalidation reaching a subscriber (p50/p99), and from the store commit
// being durable to that delivery (durable-p99). The in-memory store isolates
// the pipeline; the bolt store adds the fsync a durable write costs.
func BenchmarkWriteToInvalidation(b *testing.B) {
	for _, tc := range []struct {
		name  string
		store func(b *testing.B) Store
	}{{"mem", func(*testing.B) Store { return &memStore{} }}, {"bolt", func(b *testing.B) Store {
		st, err := OpenBoltStore(b.TempDir() + "/camgate.db")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}}} {
		b.Run(tc.name, func(b *testing.B) {
			ts := &timedStore{Store: tc.store(b)}
			h := benchHarness(b, ts)
			h.base()
			got := make(chan time.Time, 1)
			cancel := h.s.Subscribe(func(Invalidation) { got <- time.Now() })
			defer cancel()
			body := map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"}}
			lat := make([]time.Duration, 0, b.N)
			after := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if _, err := h.call(root, "PUT", fmt.Sprint("/grants/g", i%4), body); err != nil {
					b.Fatal(err)
				}
				at := <-got
				lat = append(lat, at.Sub(start))
				after = append(after, at.Sub(ts.committed))
			}
			b.StopTimer()
			slices.Sort(lat)
			slices.Sort(after)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(after[len(after)*99/100].Microseconds()), "durable-p99-µs")
		})
	}
}
