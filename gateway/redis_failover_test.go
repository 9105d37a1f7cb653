package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// lockedBuffer is a log destination shared by goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// startLoggedRedisNodes is startRedisNodes with both nodes' logs kept and
// printed when the test fails: a failover test that fails under load must
// say why.
func startLoggedRedisNodes(t *testing.T, url string) (a, b *node, logB func() string) {
	t.Helper()
	var logs [2]lockedBuffer
	logB = func() string {
		logs[1].mu.Lock()
		defer logs[1].mu.Unlock()
		return logs[1].b.String()
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range logs {
				logs[i].mu.Lock()
				t.Logf("node %c log:\n%s", 'A'+i, logs[i].b.String())
				logs[i].mu.Unlock()
			}
		}
	})
	withRedis := func(c *config.Config) { c.Redis.URL = url }
	logger := func(i int) *slog.Logger {
		return slog.New(slog.NewTextHandler(&logs[i], &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return startNodeWithLogger(t, t.TempDir(), withRedis, logger(0)), startNodeWithLogger(t, t.TempDir(), withRedis, logger(1)), logB
}

// survived fails the test when a viewer's session on B ended. (It once did
// in about half of the runs: the model reload that ends an outage
// re-checked every session before it cleared the outage, so a re-check in
// that window answered "store unavailable". authz now clears it first.)
func survived(t *testing.T, ended <-chan struct{}, logB func() string, who string) bool {
	t.Helper()
	select {
	case <-ended:
	default:
		return true
	}
	t.Fatalf("%s's session on B ended during the failover; B's log:\n%s", who, logB())
	return false
}

// write is one API write of the writer loop and what it answered.
type write struct {
	id     string
	node   int
	start  time.Time
	at     time.Duration // start, since the primary was killed (negative: before)
	took   time.Duration
	status int
	body   string
}

// writer PUTs subjects w0, w1, … alternately on each node until stopped
// and logs every answer. Each request has its own deadline, so a hang is a
// failure, not a stuck test.
type writer struct {
	nodes  []*node
	mu     sync.Mutex
	writes []write
}

func (wr *writer) run(stop <-chan struct{}) {
	hc := &http.Client{Timeout: 10 * time.Second}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		n := i % len(wr.nodes)
		w := write{id: fmt.Sprintf("w%d", i), node: n}
		req, _ := http.NewRequest("PUT", wr.nodes[n].api+"/subjects/"+w.id, strings.NewReader(`{"kind":"user"}`))
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		start := time.Now()
		res, err := hc.Do(req)
		w.start, w.took = start, time.Since(start)
		if err != nil {
			w.body = err.Error()
		} else {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			w.status, w.body = res.StatusCode, string(b)
		}
		wr.mu.Lock()
		wr.writes = append(wr.writes, w)
		wr.mu.Unlock()
	}
}

// log returns a copy of the answers so far.
func (wr *writer) log() []write {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	return append([]write(nil), wr.writes...)
}

// resumed: after the first refusal, each node has acknowledged a write.
func (wr *writer) resumed() bool {
	refused := false
	ok := make([]bool, len(wr.nodes))
	for _, w := range wr.log() {
		switch {
		case w.status/100 != 2:
			refused = true
		case refused:
			ok[w.node] = true
		}
	}
	for _, b := range ok {
		if !b {
			return false
		}
	}
	return refused
}

// TestSentinelFailoverKeepsServing: two nodes on a Sentinel URL (a primary,
// two replicas, three sentinels, min-replicas-to-write 1), a writer on both
// nodes and open RTSP viewers on B. The primary is killed: the viewers stay
// up and keep receiving media; writes are refused with a clear 503 (never a
// 500 or a hang) only until the sentinels have promoted a replica, then
// resume; every write acknowledged before the kill is on both nodes after
// it; and a revoke on A after the failover still ends a session on B
// opened after it.
func TestSentinelFailoverKeepsServing(t *testing.T) {
	grp := redistest.StartSentinel(t, redistest.SentinelOptions{Replicas: 2, DownAfter: time.Second, FailoverTimeout: 5 * time.Second})
	a, b, logB := startLoggedRedisNodes(t, grp.URL)
	for _, s := range []string{"alice", "bob"} {
		mustCall(t, a, "PUT", "/subjects/"+s, `{"kind":"user"}`, 200)
		mustCall(t, a, "PUT", "/grants/g-"+s, `{"subject":"`+s+`","device":"cam1","actions":["live"]}`, 200)
	}
	poll.Until(t, "B to allow alice and bob", func() bool { return b.allows(t, "alice") && b.allows(t, "bob") })

	var alicePackets atomic.Int64
	alice := playRTSPCounting(t, b, viewerToken(t, "alice"), &alicePackets)
	defer alice.Close()
	aliceEnded := make(chan struct{})
	go func() { _ = alice.Wait(); close(aliceEnded) }()
	poll.Until(t, "alice to receive media", func() bool { return alicePackets.Load() > 0 })

	wr := &writer{nodes: []*node{a, b}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { wr.run(stop) })
	stopWriter := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriter()

	// Some writes before the kill, then kill the primary.
	poll.Until(t, "writes before the kill", func() bool { return len(wr.log()) >= 20 })
	old := grp.Primary.Addr
	killedAt := time.Now()
	grp.Primary.Kill()

	var promotedAt time.Duration
	poll.Within(t, 30*time.Second, "the sentinels to promote a replica", func() bool {
		m := grp.MasterAddr()
		promotedAt = time.Since(killedAt)
		return m != "" && m != old
	})
	packetsAtPromotion := alicePackets.Load()
	poll.Within(t, 30*time.Second, "writes on both nodes after the failover", func() bool {
		return readyz(a) == 200 && readyz(b) == 200 && wr.resumed()
	})
	resumedAt := time.Since(killedAt)
	stopWriter()
	writes := wr.log()
	for i := range writes {
		writes[i].at = writes[i].start.Sub(killedAt)
	}

	var refused, acked int
	var firstRefused, lastRefused, firstAfter time.Duration = -1, -1, -1
	var slowest time.Duration
	for _, w := range writes {
		if w.at+w.took > 0 && w.at < resumedAt {
			t.Logf("write %s on node %d: %v…%v %d", w.id, w.node, w.at.Round(time.Millisecond), (w.at + w.took).Round(time.Millisecond), w.status)
		}
		slowest = max(slowest, w.took)
		switch {
		case w.status/100 == 2:
			acked++
			if refused > 0 && firstAfter < 0 {
				firstAfter = w.at + w.took
			}
		case w.status == http.StatusServiceUnavailable:
			var e struct{ Error string }
			if json.Unmarshal([]byte(w.body), &e) != nil || !strings.Contains(e.Error, "store") {
				t.Errorf("write %s on node %d: 503 body %q; want a JSON error naming the store", w.id, w.node, w.body)
			}
			if w.at+w.took < 0 {
				t.Errorf("write %s refused before the kill: %s", w.id, w.body)
			}
			refused++
			if firstRefused < 0 {
				firstRefused = w.at
			}
			lastRefused = w.at + w.took
		default:
			t.Errorf("write %s on node %d at %v: %d %q; want 2xx or 503", w.id, w.node, w.at, w.status, w.body)
		}
	}
	if slowest > 5*time.Second {
		t.Errorf("the slowest write took %v to answer; want a prompt 2xx or 503", slowest)
	}
	if refused == 0 {
		t.Error("no write was refused while there was no primary")
	}
	if lastRefused > promotedAt+5*time.Second {
		t.Errorf("writes refused until %v, the sentinels promoted a replica at %v", lastRefused, promotedAt)
	}

	// Every acknowledged write is there, on both nodes.
	for _, w := range writes {
		if w.status/100 != 2 {
			continue
		}
		for i, n := range []*node{a, b} {
			if code, _ := n.call(t, "GET", "/subjects/"+w.id, ""); code != 200 {
				t.Errorf("acknowledged write %s (node %d, at %v) is gone on node %d: %d", w.id, w.node, w.at, i, code)
			}
		}
	}

	// The viewer never noticed.
	if survived(t, aliceEnded, logB, "alice") {
		poll.Until(t, "alice to keep receiving media after the failover", func() bool { return alicePackets.Load() > packetsAtPromotion+50 })
	}

	// Invalidations still travel: a revoke on A ends bob's session on B.
	bob := playRTSP(t, b, viewerToken(t, "bob"))
	defer bob.Close()
	mustCall(t, a, "DELETE", "/grants/g-bob", "", 200)
	waitClientEnded(t, bob, "bob's session on B after a revoke on A after the failover")
	if !b.allows(t, "alice") || b.allows(t, "bob") {
		t.Fatal("after the revoke B should allow alice and deny bob")
	}

	t.Logf("failover: %d writes (%d acknowledged, %d refused with 503), slowest answer %v; "+
		"primary killed at 0, first refused write sent at %v, sentinels promoted at %v, last refusal answered at %v, first write acknowledged after it at %v, both nodes ready and writing at %v",
		len(writes), acked, refused, slowest.Round(time.Millisecond), firstRefused.Round(time.Millisecond), promotedAt.Round(time.Millisecond),
		lastRefused.Round(time.Millisecond), firstAfter.Round(time.Millisecond), resumedAt.Round(time.Millisecond))
}

// TestSentinelOneReplicaFailover: with one replica and
// min-replicas-to-write 1, the promoted replica has no replica of its own,
// so it refuses writes (a 503 naming the store) until the old primary comes
// back and the sentinels make it a replica; reads and open sessions never
// stop, and no acknowledged write is lost.
func TestSentinelOneReplicaFailover(t *testing.T) {
	grp := redistest.StartSentinel(t, redistest.SentinelOptions{Replicas: 1})
	a, b, logB := startLoggedRedisNodes(t, grp.URL)
	mustCall(t, a, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, a, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	poll.Until(t, "B to allow alice", func() bool { return b.allows(t, "alice") })
	var packets atomic.Int64
	alice := playRTSPCounting(t, b, viewerToken(t, "alice"), &packets)
	defer alice.Close()
	ended := make(chan struct{})
	go func() { _ = alice.Wait(); close(ended) }()

	old := grp.Primary.Addr
	killedAt := time.Now()
	grp.Primary.Kill()
	poll.Within(t, 30*time.Second, "the sentinels to promote the replica", func() bool { m := grp.MasterAddr(); return m != "" && m != old })
	promotedAt := time.Since(killedAt)
	poll.Within(t, 30*time.Second, "both nodes to follow the new primary", func() bool { return readyz(a) == 200 && readyz(b) == 200 })
	code, out := a.call(t, "PUT", "/subjects/carol", `{"kind":"user"}`)
	if msg, _ := out["error"].(string); code != http.StatusServiceUnavailable || !strings.Contains(msg, "store") {
		t.Fatalf("a write on a primary without replicas: %d %v; want 503 naming the store", code, out)
	}
	if !b.allows(t, "alice") {
		t.Fatal("decisions stopped while writes are refused")
	}

	grp.Primary.Restart() // the sentinels make it a replica of the new primary
	restartedAt := time.Since(killedAt)
	poll.Within(t, 30*time.Second, "writes to resume once the old primary is a replica", func() bool {
		code, _ := b.call(t, "PUT", "/subjects/carol", `{"kind":"user"}`)
		return code/100 == 2
	})
	resumedAt := time.Since(killedAt)
	for _, n := range []*node{a, b} {
		poll.Until(t, "both nodes to have every acknowledged write", func() bool {
			c1, _ := n.call(t, "GET", "/grants/g-alice", "")
			c2, _ := n.call(t, "GET", "/subjects/carol", "")
			return c1 == 200 && c2 == 200
		})
	}
	if survived(t, ended, logB, "alice") {
		before := packets.Load()
		poll.Until(t, "alice to keep receiving media", func() bool { return packets.Load() > before+50 })
	}
	t.Logf("one replica: promoted at %v, old primary restarted at %v, writes resumed at %v (%v after the restart)",
		promotedAt.Round(time.Millisecond), restartedAt.Round(time.Millisecond), resumedAt.Round(time.Millisecond), (resumedAt - restartedAt).Round(time.Millisecond))
}
