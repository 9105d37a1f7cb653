package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/gateway/ptz"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// startRedisNodes starts two gateways sharing one Redis, one after the other
// (both bootstrap cam1; the second finds it there).
func startRedisNodes(t testing.TB, url string) (*node, *node) {
	t.Helper()
	withRedis := func(c *config.Config) { c.Redis.URL = url }
	return startNodeWith(t, t.TempDir(), withRedis), startNodeWith(t, t.TempDir(), withRedis)
}

func (n *node) allows(t *testing.T, subject string) bool {
	t.Helper()
	code, out := n.call(t, "GET", "/check?subject="+subject+"&device=cam1&action=live", "")
	return code == 200 && out["allowed"] == true
}

// sessionOn finds subject's session in n's API list and returns its id and
// node.
func sessionOn(t *testing.T, n *node, subject string) (id, nodeName string) {
	t.Helper()
	_, out := n.call(t, "GET", "/sessions", "")
	list, _ := out["sessions"].([]any)
	for _, x := range list {
		s, _ := x.(map[string]any)
		if s["subject"] == subject {
			id, _ = s["id"].(string)
			nodeName, _ = s["node"].(string)
			return id, nodeName
		}
	}
	return "", ""
}

// TestTwoNodesOnRedis: a grant written on A is a decision on B; an RTSP
// session on B ends after a revoke on A; a session on B is listed on A and
// kicked from A; a PTZ lease held on A refuses B; a change B could not read
// from the feed (a skipped revision) still leads to the right answer.
func TestTwoNodesOnRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	a, b := startRedisNodes(t, srv.URL)
	mustCall(t, a, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, a, "PUT", "/subjects/bob", `{"kind":"user"}`, 200)
	mustCall(t, a, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	mustCall(t, a, "PUT", "/grants/g-bob", `{"subject":"bob","device":"cam1","actions":["live"]}`, 200)
	poll.Until(t, "B to allow alice and bob", func() bool { return b.allows(t, "alice") && b.allows(t, "bob") })

	aliceOnB := playRTSP(t, b, viewerToken(t, "alice"))
	defer aliceOnB.Close()
	bobOnB := playRTSP(t, b, viewerToken(t, "bob"))
	defer bobOnB.Close()

	mustCall(t, a, "DELETE", "/grants/g-alice", "", 200)
	waitClientEnded(t, aliceOnB, "alice's session on B after the revoke on A")

	var id, where string
	poll.Until(t, "A to list bob's session on B", func() bool { id, where = sessionOn(t, a, "bob"); return id != "" })
	if where != b.g.redis.directory.Node {
		t.Fatalf("bob's session listed on node %q; want B (%q)", where, b.g.redis.directory.Node)
	}
	mustCall(t, a, "DELETE", "/sessions/"+id, "", 200)
	waitClientEnded(t, bobOnB, "bob's session on B after a kick on A")
	poll.Until(t, "the kicked session to leave A's list", func() bool { id, _ := sessionOn(t, a, "bob"); return id == "" })

	ctx := context.Background()
	now := time.Now()
	alice, carol := ptz.Holder{ID: "alice", Kind: ptz.KindUser, Priority: 10}, ptz.Holder{ID: "carol", Kind: ptz.KindUser, Priority: 10}
	if _, err := a.g.leaseStore().TryAcquire(ctx, "cam1", alice, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	var held *ptz.ErrLeaseHeld
	if _, err := b.g.leaseStore().TryAcquire(ctx, "cam1", carol, time.Minute, now); !errors.As(err, &held) || held.Holder.ID != "alice" {
		t.Fatalf("B acquiring a lease held on A: %v; want held by alice", err)
	}

	// A revision B cannot read from the feed: the record and the counter
	// move, the feed entry is missing.
	c := srv.Client()
	kRev, kRecords, _ := b.g.redis.store.Keys()
	rev, err := c.Get(ctx, kRev).Uint64()
	if err != nil {
		t.Fatal(err)
	}
	grant, _ := json.Marshal(map[string]any{"id": "g-carol", "subject": "alice", "device": "cam1", "actions": []string{"live"}, "condition": "always"})
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, kRecords, "grants\x00g-carol", grant)
		p.Set(ctx, kRev, rev+1, 0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "both nodes to allow alice after the lost change", func() bool { return a.allows(t, "alice") && b.allows(t, "alice") })
}

func readyz(n *node) int {
	res, err := http.Get("http://" + n.g.HTTPAddr().String() + "/readyz")
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// TestRedisRestartBothNodesRecover: Redis killed → both nodes say not ready
// (503) and a viewer without a cached decision is refused; Redis back (AOF)
// → both ready again, writes work and decisions are right on both.
func TestRedisRestartBothNodesRecover(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, b, _ := startLoggedRedisNodes(t, srv.URL)
	mustCall(t, a, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, a, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	poll.Until(t, "B to allow alice", func() bool { return b.allows(t, "alice") })

	srv.Kill()
	poll.Until(t, "both nodes to report not ready", func() bool { return readyz(a) == 503 && readyz(b) == 503 })
	if code, out := a.call(t, "PUT", "/subjects/carol", `{"kind":"user"}`); code/100 == 2 {
		t.Fatalf("write during the outage: %d %v", code, out)
	}
	code, out := a.call(t, "POST", "/links", `{"device":"cam1","actions":["live"],"not_after":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`)
	if msg, _ := out["error"].(string); code != http.StatusServiceUnavailable || !strings.Contains(msg, "link store") {
		t.Fatalf("creating a link during the outage: %d %v; want 503 naming the link store", code, out)
	}
	if _, err := probeCodecs(t, b.rtsp+"/cam1?token="+viewerToken(t, "dave")); err == nil {
		t.Fatal("an uncached viewer was admitted during the outage")
	}

	srv.Restart()
	poll.Until(t, "both nodes to be ready again", func() bool { return readyz(a) == 200 && readyz(b) == 200 })
	mustCall(t, b, "PUT", "/subjects/carol", `{"kind":"user"}`, 200)
	mustCall(t, b, "PUT", "/grants/g-carol", `{"subject":"carol","device":"cam1","actions":["live"]}`, 200)
	mustCall(t, b, "DELETE", "/grants/g-alice", "", 200)
	poll.Until(t, "A to allow carol and deny alice", func() bool { return a.allows(t, "carol") && !a.allows(t, "alice") })
	if got, err := probeCodecs(t, a.rtsp+"/cam1?token="+viewerToken(t, "carol")); err != nil || got == "" {
		t.Fatalf("carol on A after recovery: %q %v", got, err)
	}
}

// TestLinkDisabledOnOtherNode: a share link made on A plays on B; disabling
// it on A ends the viewer on B.
func TestLinkDisabledOnOtherNode(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	a, b := startRedisNodes(t, r.URL)
	out := mustCall(t, a, "POST", "/links", `{"device":"cam1","actions":["live"],"not_after":"`+
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`, 201)
	c := playRTSP(t, b, out["token"].(string))
	defer c.Close()
	mustCall(t, a, "POST", "/links/"+out["id"].(string)+"/disable", "", 200)
	waitClientEnded(t, c, "viewer on B after the link was disabled on A")
}

// TestLinkChangeWhileNodeCutOff: node B reaches Redis through a proxy that
// the test cuts, as an attacker who can break one node's Redis connection
// would. While B is cut off, A disables one link, and disables then
// re-enables another. When B's connection is back, the open viewer of the
// disabled link on B is ended within a bounded time (B caught up from the
// link feed, it did not need to be connected at the moment of the change),
// and the viewer of the re-enabled link stays. Also when the feed lost the
// entries B needed meanwhile (trimmed): B then reloads every link.
func TestLinkChangeWhileNodeCutOff(t *testing.T) {
	for _, trim := range []bool{false, true} {
		t.Run(map[bool]string{false: "feed kept", true: "feed trimmed"}[trim], func(t *testing.T) { linkChangeWhileCutOff(t, trim) })
	}
}

func linkChangeWhileCutOff(t *testing.T, trim bool) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	proxy := redistest.NewProxy(t, r.Addr)
	a := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.Redis.URL = r.URL })
	b := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.Redis.URL = proxy.URL })
	window := `{"device":"cam1","actions":["live"],"not_after":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`
	disabled := mustCall(t, a, "POST", "/links", window, 201)
	flipped := mustCall(t, a, "POST", "/links", window, 201)

	var disabledPackets, flippedPackets atomic.Int64
	gone := playRTSPCounting(t, b, disabled["token"].(string), &disabledPackets)
	defer gone.Close()
	stays := playRTSPCounting(t, b, flipped["token"].(string), &flippedPackets)
	defer stays.Close()
	staysEnded := make(chan struct{})
	go func() { _ = stays.Wait(); close(staysEnded) }()

	proxy.Cut()
	poll.Until(t, "B to notice it lost Redis", func() bool { return readyz(b) == 503 })
	mustCall(t, a, "POST", "/links/"+disabled["id"].(string)+"/disable", "", 200)
	mustCall(t, a, "POST", "/links/"+flipped["id"].(string)+"/disable", "", 200)
	mustCall(t, a, "POST", "/links/"+flipped["id"].(string)+"/enable", "", 200)
	if trim {
		if err := r.Client().XTrimMaxLen(context.Background(), "camgate:{camgate}:link-changes", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	restored := time.Now()
	proxy.Restore()
	waitClientEnded(t, gone, "the disabled link's viewer on B after B reconnected")
	took := time.Since(restored)
	t.Logf("disabled link's viewer on B ended %v after B's Redis connection came back", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("the disabled link's viewer ended %v after the reconnect; want within 5 s (feed retry at most 2 s, heartbeat 1 s)", took)
	}
	poll.Until(t, "B to be ready again", func() bool { return readyz(b) == 200 })
	before := flippedPackets.Load()
	poll.Until(t, "the re-enabled link's viewer to keep receiving media", func() bool { return flippedPackets.Load() > before+50 })
	select {
	case <-staysEnded:
		t.Fatal("the re-enabled link's viewer on B was ended")
	default:
	}
}
