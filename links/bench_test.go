package links_test

import (
	"testing"
	"time"

	"github.com/camgate/camgate/links"
)

// Verify+Decide runs on every RTSP DESCRIBE/PLAY, WHEP offer, HLS request
// and archive segment of a link viewer.
func benchVerifyDecide(b *testing.B, tweak func(*links.Service), miss bool) {
	e := newEnv(b, lockFree, tweak)
	c := e.create(b, t0, t0.Add(time.Hour))
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if miss {
			e.svc.Invalidate(c.ID)
		}
		claims, err := e.svc.Verify(c.Token)
		if err != nil {
			b.Fatal(err)
		}
		if d := e.svc.Decide(claims.LinkID, claims.Device, "live", now, nil); !d.Allowed {
			b.Fatal(d.Reason)
		}
	}
}

// lockFree replaces the test fakes' mutexes (clock, world) by what the
// gateway passes: a plain clock and an authz check that takes no lock.
func lockFree(s *links.Service) {
	s.Now = func() time.Time { return t0.Add(time.Minute) }
	s.Policy = rootOnly{}
}

// Cached: the token was verified before and the link is in the snapshot.
func BenchmarkVerifyDecideCached(b *testing.B) {
	benchVerifyDecide(b, func(*links.Service) {}, false)
}

// Uncached: every call verifies the Ed25519 signature.
func BenchmarkVerifyDecideUncached(b *testing.B) {
	benchVerifyDecide(b, func(s *links.Service) { s.VerifyCacheSize = -1 }, false)
}

// Uncached and cold: signature plus a store read of the link (as after an
// invalidation from another node).
func BenchmarkVerifyDecideUncachedStoreRead(b *testing.B) {
	benchVerifyDecide(b, func(s *links.Service) { s.VerifyCacheSize = -1 }, true)
}

func BenchmarkVerifyDecideCachedParallel(b *testing.B) {
	e := newEnv(b, lockFree)
	c := e.create(b, t0, t0.Add(time.Hour))
	now := t0.Add(time.Minute)
	if _, err := e.svc.Verify(c.Token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			claims, err := e.svc.Verify(c.Token)
			if err != nil {
				b.Fatal(err)
			}
			if d := e.svc.Decide(claims.LinkID, claims.Device, "live", now, nil); !d.Allowed {
				b.Fatal(d.Reason)
			}
		}
	})
}

// rootOnly is a Policy that takes no lock: only root's links work.
type rootOnly struct{}

func (rootOnly) MayManage(c links.Creator, _ bool) bool  { return c.Root }
func (rootOnly) Sees(links.Creator, string, string) bool { return true }
func (rootOnly) CreatorMay(creator, _, _ string, _ time.Time) bool {
	return creator == "root"
}
func (rootOnly) Device(d string) (string, bool) { return d, true }
