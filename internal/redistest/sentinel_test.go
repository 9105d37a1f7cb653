package redistest

import (
	"testing"
	"time"

	"github.com/camgate/camgate/internal/poll"
)

// TestSentinelFailover: killing the primary makes the sentinels promote a
// replica, which then takes writes (with two replicas, the other one
// follows the new primary, so min-replicas-to-write 1 is met).
func TestSentinelFailover(t *testing.T) {
	g := StartSentinel(t, SentinelOptions{Replicas: 2})
	if got := g.MasterAddr(); got != g.Primary.Addr {
		t.Fatalf("sentinels report primary %q; want %q", got, g.Primary.Addr)
	}
	if !g.Writable(g.Primary.Addr) {
		t.Fatal("the primary refuses a write with its replicas in sync")
	}
	start := time.Now()
	g.Primary.Kill()
	var promoted string
	poll.Within(t, 20*time.Second, "the sentinels to promote a replica", func() bool {
		promoted = g.MasterAddr()
		return promoted != "" && promoted != g.Primary.Addr
	})
	promotedAfter := time.Since(start)
	if g.Server(promoted) == nil {
		t.Fatalf("promoted %q is none of the replicas", promoted)
	}
	poll.Within(t, 20*time.Second, "the new primary to take writes", func() bool { return g.Writable(promoted) })
	t.Logf("promoted %s after %v; writable after %v", promoted, promotedAfter, time.Since(start))
}
