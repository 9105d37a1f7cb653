package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/jsonapi"
	"github.com/camgate/camgate/authz/redisstore"
	"github.com/camgate/camgate/authz/storetest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

var nsSeq atomic.Int64

func newStore(t testing.TB, c redis.UniversalClient, ns string) *redisstore.Store {
	t.Helper()
	s := &redisstore.Store{Client: c, Namespace: ns, Heartbeat: 100 * time.Millisecond, HeartbeatSlack: 500 * time.Millisecond}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := srv.Client()
	storetest.Run(t, func(t *testing.T) func() (authz.Store, error) {
		ns := fmt.Sprintf("t%d", nsSeq.Add(1))
		return func() (authz.Store, error) { return newStore(t, c, ns), nil }
	})
}

// TestFailedCommitChangesNothing: a commit the script cannot complete (here
// the feed key holds the wrong type) and a commit with an invalid kind leave
// the revision and the records as they were.
func TestFailedCommitChangesNothing(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := srv.Client()
	s := newStore(t, c, "fail")
	ctx := context.Background()
	if _, err := s.Commit(ctx, 0, []authz.Mutation{{Kind: "k", ID: "a", Data: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	_, _, feed := s.Keys()
	if err := c.Del(ctx, feed).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, feed, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		muts []authz.Mutation
	}{
		{"feed append fails", []authz.Mutation{{Kind: "k", ID: "a", Data: nil}, {Kind: "k", ID: "b", Data: []byte("2")}}},
		{"invalid kind", []authz.Mutation{{Kind: "k", ID: "c", Data: []byte("3")}, {Kind: "", ID: "x", Data: []byte("4")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Commit(ctx, 1, tc.muts); err == nil {
				t.Fatal("commit succeeded")
			}
			rev, recs, err := s.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rev != 1 || len(recs) != 1 || recs[0].ID != "a" || string(recs[0].Data) != "1" {
				t.Fatalf("after a failed commit: rev %d records %+v; want rev 1 and only k/a=1", rev, recs)
			}
		})
	}
}

// TestChangesCatchUp: Changes returns the feed after a revision, or a gap
// when it was trimmed past it.
func TestChangesCatchUp(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := srv.Client()
	s := newStore(t, c, "changes")
	ctx := context.Background()
	for rev := uint64(0); rev < 3; rev++ {
		if _, err := s.Commit(ctx, rev, []authz.Mutation{{Kind: "k", ID: fmt.Sprint(rev), Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Changes(ctx, 1)
	if err != nil || len(got) != 2 || got[0].Rev != 2 || got[1].Rev != 3 || got[1].Mutations[0].ID != "2" {
		t.Fatalf("Changes(1) = %+v, %v; want revisions 2 and 3", got, err)
	}
	if got, err := s.Changes(ctx, 3); err != nil || len(got) != 0 {
		t.Fatalf("Changes(3) = %+v, %v; want none", got, err)
	}
	_, _, feed := s.Keys()
	if err := c.XTrimMaxLen(ctx, feed, 1).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Changes(ctx, 1); !errors.Is(err, authz.ErrFeedGap) {
		t.Fatalf("Changes past a trimmed feed: %v; want ErrFeedGap", err)
	}
}

// node is one authz.Service on the shared store, with a clock tests move.
type node struct {
	s   *authz.Service
	clk *clock
	inv chan authz.Invalidation
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func startNode(t *testing.T, st *redisstore.Store) *node {
	t.Helper()
	n := &node{clk: &clock{now: t0}, inv: make(chan authz.Invalidation, 1024)}
	n.s = &authz.Service{Store: st, Now: n.clk.Now, OutageGrace: time.Minute}
	if err := n.s.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.s.Close)
	cancel := n.s.Subscribe(func(inv authz.Invalidation) { n.inv <- inv })
	t.Cleanup(cancel)
	return n
}

func (n *node) do(t *testing.T, method, path string, body any) error {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	_, err := jsonapi.Handler{Service: n.s}.Handle(context.Background(), authz.Caller{Root: true}, method, strings.Split(path, "/"), nil, b)
	return err
}

func (n *node) must(t *testing.T, method, path string, body any) {
	t.Helper()
	if err := n.do(t, method, path, body); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

func (n *node) live(subject string) authz.Decision {
	return n.s.Check(subject, "cam1", authz.ActionLive, n.clk.Now())
}

// waitInvalidation waits for an invalidation matching ok on n.
func (n *node) waitInvalidation(t *testing.T, what string, ok func(authz.Invalidation) bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case inv := <-n.inv:
			if ok(inv) {
				return
			}
		case <-timeout:
			t.Fatalf("no invalidation %s within 5s", what)
		}
	}
}

func base(t *testing.T, n *node) {
	t.Helper()
	n.must(t, "PUT", "sites/hq", map[string]any{"name": "HQ"})
	n.must(t, "PUT", "devices/cam1", map[string]any{"site": "hq", "kind": "camera", "source": "builtin:demo"})
	n.must(t, "PUT", "subjects/alice", map[string]any{"kind": "user"})
	n.must(t, "PUT", "subjects/bob", map[string]any{"kind": "user"})
}

// TestTwoNodes: a grant written on A is a decision on B, B publishes the
// invalidation naming alice, and a revoke on A is a denial on B. Writes on
// both nodes interleave without losing either.
func TestTwoNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := srv.Client()
	a, b := startNode(t, newStore(t, c, "two")), startNode(t, newStore(t, c, "two"))
	base(t, a)
	if d := b.live("alice"); d.Allowed {
		t.Fatalf("alice before any grant: %+v", d)
	}
	a.must(t, "PUT", "grants/g1", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"}})
	// base wrote revisions 1-4; the grant is 5.
	b.waitInvalidation(t, "of revision 5 naming alice", func(inv authz.Invalidation) bool {
		return inv.Rev == 5 && !inv.All && inv.Affects("alice", "cam1") && !inv.Affects("bob", "cam1")
	})
	if d := b.live("alice"); !d.Allowed {
		t.Fatalf("B after A's grant: %+v", d)
	}
	// B writes while A's last change may still be in flight: both land.
	b.must(t, "PUT", "grants/g2", map[string]any{"subject": "bob", "device": "cam1", "actions": []string{"live"}})
	a.must(t, "DELETE", "grants/g1", nil)
	poll.Until(t, "B to deny alice and allow bob", func() bool { return !b.live("alice").Allowed && b.live("bob").Allowed })
	poll.Until(t, "A to allow bob", func() bool { return a.live("bob").Allowed })
}

// TestGapReloads: a change B cannot get from the feed — the revision counter
// ahead of a missing entry, or an entry that skips a revision — makes B
// reload, so it still answers correctly, and publish an All invalidation.
func TestGapReloads(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := srv.Client()
	ctx := context.Background()
	tests := []struct {
		name string
		drop func(t *testing.T, st *redisstore.Store, rev uint64, grant []byte)
	}{
		{"counter ahead, entry missing", func(t *testing.T, st *redisstore.Store, rev uint64, grant []byte) {
			kRev, kRec, _ := st.Keys()
			if err := c.HSet(ctx, kRec, "grants\x00g1", grant).Err(); err != nil {
				t.Fatal(err)
			}
			if err := c.Set(ctx, kRev, rev+1, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}},
		{"entry skips a revision", func(t *testing.T, st *redisstore.Store, rev uint64, grant []byte) {
			kRev, kRec, feed := st.Keys()
			payload, _ := json.Marshal([]map[string]any{{"k": "grants", "i": "g1", "d": grant}})
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, kRec, "grants\x00g1", grant)
				p.Set(ctx, kRev, rev+2, 0)
				p.XAdd(ctx, &redis.XAddArgs{Stream: feed, ID: fmt.Sprintf("%d-0", rev+2), Values: []any{"m", payload}})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("gap%d", i)
			a := startNode(t, newStore(t, c, ns))
			base(t, a)
			bst := newStore(t, c, ns)
			b := startNode(t, bst)
			rev, _, err := bst.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			grant, _ := json.Marshal(map[string]any{"id": "g1", "subject": "alice", "device": "cam1", "actions": []string{"live"}, "condition": "always"})
			tc.drop(t, bst, rev, grant)
			b.waitInvalidation(t, "All after the gap", func(inv authz.Invalidation) bool { return inv.All })
			poll.Until(t, "B to allow alice", func() bool { return b.live("alice").Allowed })
		})
	}
}

// TestOutageAndRecovery: Redis killed → nodes report unhealthy, answer cached
// decisions only (valid_until capped at outage start + grace) and refuse the
// rest, writes fail with ErrStoreUnavailable; after the grace even cached
// decisions end. Redis back (AOF kept its data) → both nodes recover on their
// own, writes work and reach the other node.
func TestOutageAndRecovery(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()
	a, b := startNode(t, newStore(t, c, "outage")), startNode(t, newStore(t, c, "outage"))
	base(t, a)
	a.must(t, "PUT", "grants/g1", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"}})
	poll.Until(t, "B to allow alice", func() bool { return b.live("alice").Allowed })

	srv.Kill()
	poll.Until(t, "both nodes to report the outage", func() bool {
		return errors.Is(a.s.Healthy(), authz.ErrStoreUnavailable) && errors.Is(b.s.Healthy(), authz.ErrStoreUnavailable)
	})

	b.waitInvalidation(t, "All at the outage", func(inv authz.Invalidation) bool { return inv.All })
	d := b.live("alice")
	if !d.Allowed || d.ValidUntil.IsZero() || d.ValidUntil.After(t0.Add(time.Minute)) {
		t.Fatalf("cached alice during the outage: %+v; want allowed until at most %s", d, t0.Add(time.Minute))
	}
	if allowed, vu := b.s.Actions("alice", "cam1", b.clk.Now()); allowed&authz.ActionLive == 0 || vu.After(t0.Add(time.Minute)) {
		t.Fatalf("Actions during the outage: %v until %s", allowed, vu)
	}
	if d := b.live("carol"); d.Allowed || d.Reason != "store unavailable" {
		t.Fatalf("uncached carol during the outage: %+v; want refused, store unavailable", d)
	}
	if err := a.do(t, "PUT", "subjects/carol", map[string]any{"kind": "user"}); !errors.Is(err, authz.ErrStoreUnavailable) {
		t.Fatalf("write during the outage: %v; want ErrStoreUnavailable", err)
	}
	b.clk.Add(time.Minute)
	if d := b.live("alice"); d.Allowed {
		t.Fatalf("cached alice after the grace: %+v; want refused", d)
	}

	srv.Restart()
	poll.Until(t, "both nodes to recover", func() bool { return a.s.Healthy() == nil && b.s.Healthy() == nil })
	a.must(t, "PUT", "subjects/carol", map[string]any{"kind": "user"})
	a.must(t, "PUT", "grants/g2", map[string]any{"subject": "carol", "device": "cam1", "actions": []string{"live"}})
	poll.Until(t, "B to allow carol and alice again", func() bool { return b.live("carol").Allowed && b.live("alice").Allowed })
}

// TestRedisRestartedEmpty documents what losing the only store means: the
// nodes notice the revision went back, load the empty store and deny
// (fail closed) until the data is restored; writes work again.
func TestRedisRestartedEmpty(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := srv.Client()
	a, b := startNode(t, newStore(t, c, "empty")), startNode(t, newStore(t, c, "empty"))
	base(t, a)
	a.must(t, "PUT", "grants/g1", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"}})
	poll.Until(t, "B to allow alice", func() bool { return b.live("alice").Allowed })
	srv.Restart()
	poll.Until(t, "both nodes to deny alice", func() bool {
		return a.s.Healthy() == nil && b.s.Healthy() == nil && !a.live("alice").Allowed && !b.live("alice").Allowed
	})

	base(t, a)
	a.must(t, "PUT", "grants/g1", map[string]any{"subject": "alice", "device": "cam1", "actions": []string{"live"}})
	poll.Until(t, "B to allow alice again", func() bool { return b.live("alice").Allowed })
}
