package gateway

import (
	"testing"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// BenchmarkRevokeAcrossNodes: 100 RTSP sessions of distinct viewers held on
// node B; the time from deleting a viewer's grant on node A to its client
// seeing the session closed — A's commit to Redis, B reading the change
// feed, B's re-check and RTSP close. Redis runs with appendfsync everysec
// (the recommended setting). It reports p50 and p99.
func BenchmarkRevokeAcrossNodes(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{AppendFsync: "everysec"})
	for i := range b.N {
		b.StopTimer()
		if i > 0 {
			if err := srv.Client().FlushAll(b.Context()).Err(); err != nil {
				b.Fatal(err)
			}
		}
		na, nb := startRedisNodes(b, srv.URL)
		grantViewers(b, na)
		poll.Until(b, "B to catch up", func() bool {
			return nb.g.Authz().Check("viewer99", "cam1", authz.ActionLive, time.Now()).Allowed
		})

		measureRevokes(b, na, nb)
		na.g.Close()
		nb.g.Close()
	}
}
