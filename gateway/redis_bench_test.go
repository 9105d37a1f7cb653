package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/internal/redistest"
)

// BenchmarkRevokeAcrossNodes measures, over 100 RTSP sessions of distinct
// viewers held on node B, the time from deleting a viewer's grant on node A
// to the moment that viewer's client sees its session closed: A's commit to
// Redis, B reading the change feed, B's re-check and RTSP close. Redis runs
// with appendfsync everysec (the recommended setting). It reports p50 and p99.
func BenchmarkRevokeAcrossNodes(b *testing.B) {
	const sessions = 100
	srv := redistest.Start(b, redistest.Options{AppendFsync: "everysec"})
	for i := range b.N {
		b.StopTimer()
		if i > 0 {
			if err := srv.Client().FlushAll(b.Context()).Err(); err != nil {
				b.Fatal(err)
			}
		}
		na, nb := startRedisNodes(b, srv.URL)
		root := authz.Caller{Root: true}
		clients := make([]*gortsplib.Client, sessions)
		ended := make([]chan time.Time, sessions)
		for i := range sessions {
			sub := fmt.Sprintf("viewer%d", i)
			mustHandle(b, na, root, "PUT", []string{"subjects", sub}, `{"kind":"user"}`)
			mustHandle(b, na, root, "PUT", []string{"grants", "g-" + sub}, `{"subject":"`+sub+`","device":"cam1","actions":["live"]}`)
		}
		eventually(b, "B to catch up", func() bool {
			return nb.g.Authz().Check("viewer99", "cam1", authz.ActionLive, time.Now()).Allowed
		})
		for i := range sessions {
			clients[i] = playRTSP(b, nb, viewerToken(b, fmt.Sprintf("viewer%d", i)))
			ended[i] = make(chan time.Time, 1)
			go func(c *gortsplib.Client, ch chan time.Time) { _ = c.Wait(); ch <- time.Now() }(clients[i], ended[i])
		}
		b.StartTimer()
		lat := make([]time.Duration, 0, sessions)
		for i := range sessions {
			start := time.Now()
			mustHandle(b, na, root, "DELETE", []string{"grants", fmt.Sprintf("g-viewer%d", i)}, "")
			select {
			case at := <-ended[i]:
				lat = append(lat, at.Sub(start))
			case <-time.After(5 * time.Second):
				b.Fatalf("session %d on B still open 5 s after its revoke on A", i)
			}
		}
		b.StopTimer()
		for _, c := range clients {
			c.Close()
		}
		na.g.Close()
		nb.g.Close()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
