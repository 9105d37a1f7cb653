package gateway

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/jsonapi"
	"github.com/camgate/camgate/internal/mediatest"
)

// playRTSP opens an RTSP session on cam1 over TCP with gortsplib's client
// and returns it playing.
func playRTSP(tb testing.TB, n *node, tok string) *gortsplib.Client {
	tb.Helper()
	c, err := dialRTSP(tb, n.rtsp+"/cam1?token="+tok, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// dialRTSP plays rawURL over TCP with gortsplib's client, which answers
// whichever of Basic or Digest the server challenges with (credentials in
// the URL), counting the RTP packets it receives in packets when not nil.
func dialRTSP(tb testing.TB, rawURL string, packets *atomic.Int64) (*gortsplib.Client, error) {
	tb.Helper()
	var count func(*description.Media, *rtp.Packet)
	if packets != nil {
		count = func(*description.Media, *rtp.Packet) { packets.Add(1) }
	}
	return mediatest.Play(tb, rawURL, gortsplib.ProtocolTCP, count)
}

const revokeSessions = 100

// grantViewers gives viewer0…viewer99 `live` on cam1 through node n.
func grantViewers(b *testing.B, n *node) {
	root := authz.Caller{Root: true}
	for i := range revokeSessions {
		sub := fmt.Sprintf("viewer%d", i)
		mustHandle(b, n, root, "PUT", []string{"subjects", sub}, `{"kind":"user"}`)
		mustHandle(b, n, root, "PUT", []string{"grants", "g-" + sub}, `{"subject":"`+sub+`","device":"cam1","actions":["live"]}`)
	}
}

// measureRevokes plays one RTSP session per viewer on the viewers' node,
// then deletes each viewer's grant on the writer node and times until that
// viewer's client sees its session closed. It reports p50 and p99. The
// benchmark timer runs only around the revokes.
func measureRevokes(b *testing.B, writer, viewers *node) {
	clients := make([]*gortsplib.Client, revokeSessions)
	ended := make([]chan time.Time, revokeSessions)
	for i := range revokeSessions {
		clients[i] = playRTSP(b, viewers, viewerToken(b, fmt.Sprintf("viewer%d", i)))
		ended[i] = make(chan time.Time, 1)
		go func(c *gortsplib.Client, ch chan time.Time) { _ = c.Wait(); ch <- time.Now() }(clients[i], ended[i])
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	b.StartTimer()
	lat := make([]time.Duration, 0, revokeSessions)
	for i := range revokeSessions {
		start := time.Now()
		mustHandle(b, writer, authz.Caller{Root: true}, "DELETE", []string{"grants", fmt.Sprintf("g-viewer%d", i)}, "")
		select {
		case at := <-ended[i]:
			lat = append(lat, at.Sub(start))
		case <-time.After(5 * time.Second):
			b.Fatalf("session %d still open 5 s after its revoke", i)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkRevokeToSessionEnd: 100 open RTSP sessions of distinct viewers on
// one node; the time from deleting a viewer's grant to its client seeing the
// session closed (p50, p99).
func BenchmarkRevokeToSessionEnd(b *testing.B) {
	for range b.N {
		b.StopTimer()
		n := startNode(b, b.TempDir())
		grantViewers(b, n)
		measureRevokes(b, n, n)
		n.g.Close()
	}
}

func mustHandle(tb testing.TB, n *node, c authz.Caller, method string, parts []string, body string) {
	tb.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	if _, err := (jsonapi.Handler{Service: n.g.Authz()}).Handle(context.Background(), c, method, parts, nil, b); err != nil {
		tb.Fatalf("%s %v: %v", method, parts, err)
	}
}
