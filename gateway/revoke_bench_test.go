package gateway

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/camgate/camgate/authz"
)

// playRTSP opens an RTSP session over TCP with gortsplib's client and
// returns it playing.
func playRTSP(tb testing.TB, n *node, tok string) *gortsplib.Client {
	tb.Helper()
	u, err := base.ParseURL(n.rtsp + "/cam1?token=" + tok)
	if err != nil {
		tb.Fatal(err)
	}
	proto := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto}
	if err := c.Start(); err != nil {
		tb.Fatal(err)
	}
	desc, _, err := c.Describe(u)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Play(nil); err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkRevokeToSessionEnd measures, over 100 open RTSP sessions of
// distinct viewers, the time from deleting a viewer's grant to the moment
// that viewer's client sees its session closed. It reports p50 and p99.
func BenchmarkRevokeToSessionEnd(b *testing.B) {
	const sessions = 100
	for range b.N {
		b.StopTimer()
		n := startNode(b, b.TempDir())
		root := authz.Caller{Root: true}
		clients := make([]*gortsplib.Client, sessions)
		ended := make([]chan time.Time, sessions)
		for i := range sessions {
			sub := fmt.Sprintf("viewer%d", i)
			mustHandle(b, n, root, "PUT", []string{"subjects", sub}, `{"kind":"user"}`)
			mustHandle(b, n, root, "PUT", []string{"grants", "g-" + sub}, `{"subject":"`+sub+`","device":"cam1","actions":["live"]}`)
			clients[i] = playRTSP(b, n, viewerToken(b, sub))
			ended[i] = make(chan time.Time, 1)
			go func(c *gortsplib.Client, ch chan time.Time) { _ = c.Wait(); ch <- time.Now() }(clients[i], ended[i])
		}
		b.StartTimer()
		lat := make([]time.Duration, 0, sessions)
		for i := range sessions {
			start := time.Now()
			mustHandle(b, n, root, "DELETE", []string{"grants", fmt.Sprintf("g-viewer%d", i)}, "")
			select {
			case at := <-ended[i]:
				lat = append(lat, at.Sub(start))
			case <-time.After(5 * time.Second):
				b.Fatalf("session %d still open 5 s after its revoke", i)
			}
		}
		b.StopTimer()
		for _, c := range clients {
			c.Close()
		}
		n.g.Close()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

func mustHandle(tb testing.TB, n *node, c authz.Caller, method string, parts []string, body string) {
	tb.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	if _, err := n.g.Authz().Handle(context.Background(), c, method, parts, nil, b); err != nil {
		tb.Fatalf("%s %v: %v", method, parts, err)
	}
}
