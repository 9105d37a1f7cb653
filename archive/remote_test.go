package archive

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
	"github.com/redis/go-redis/v9"

	"github.com/valyala/fasthttp"
)

// testCluster is archive stores sharing one real Redis index, each serving
// its held segments over real HTTP to the others.
type testCluster struct {
	t      *testing.T
	redis  *redistest.Server
	clock  *fakeClock
	stores map[string]*Store
	mu     sync.Mutex
	down   map[string]bool
	addrs  map[string]string
}

const testPeerSecret = "node-token:"

func newTestCluster(t *testing.T, nodes ...string) *testCluster {
	c := &testCluster{t: t, redis: redistest.Start(t, redistest.Options{NoPersistence: true}),
		clock: &fakeClock{now: t0.Add(time.Hour)}, stores: map[string]*Store{}, down: map[string]bool{}, addrs: map[string]string{}}
	for _, n := range nodes {
		c.start(n)
	}
	return c
}

// start runs node n: a store in its own folder joined to the cluster, its
// held segments served on a loopback port to requests bearing the token
// the peers mint for n.
func (c *testCluster) start(n string) *Store {
	t := c.t
	s := newTestStore(t, t.TempDir(), c.clock)
	t.Cleanup(s.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		parts := strings.Split(strings.TrimPrefix(string(ctx.Path()), "/archive/"), "/")
		if len(parts) != 3 || parts[1] != "held" || string(ctx.Request.Header.Peek("Authorization")) != "Bearer "+testPeerSecret+n+"/"+parts[0]+"/"+parts[2] {
			ctx.Error("no", fasthttp.StatusUnauthorized)
			return
		}
		s.ServeHeld(ctx, parts[0], strings.TrimSuffix(parts[2], segmentExt))
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	c.mu.Lock()
	c.addrs[n] = "http://" + ln.Addr().String()
	c.mu.Unlock()
	client := c.redis.Client()
	idx := &RedisIndex{Client: client, Node: n, TTL: 30 * 24 * time.Hour, Now: c.clock.Now}
	if err := idx.Initialize(); err != nil {
		t.Fatal(err)
	}
	peers := &PeerClient{
		Locate: func(_ context.Context, node string) (string, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.down[node] || c.addrs[node] == "" {
				return "", ErrHolderDown
			}
			return c.addrs[node], nil
		},
		Token: func(node, camera, segment string) string {
			return testPeerSecret + node + "/" + camera + "/" + segment + segmentExt
		},
	}
	if err := s.JoinCluster(Cluster{Shared: idx, Peers: peers, Node: n}); err != nil {
		t.Fatal(err)
	}
	c.stores[n] = s
	return s
}

func (c *testCluster) setDown(n string, down bool) {
	c.mu.Lock()
	c.down[n] = down
	c.mu.Unlock()
}

// Two nodes recorded cam1 one after the other (the owner changed, with a
// 4 s hole); a third node that holds nothing serves the whole of it.
func TestArchiveAcrossNodes(t *testing.T) {
	c := newTestCluster(t, "a", "b", "c")
	a, b, third := c.stores["a"], c.stores["b"], c.stores["c"]
	recordSynthetic(t, a, "cam1", t0, 10*time.Second, 3000)
	recordSynthetic(t, b, "cam1", t0.Add(14*time.Second), 10*time.Second, 3000)
	ctx := context.Background()
	end := t0.Add(time.Minute)
	poll.Until(t, "node c to list both nodes' segments", func() bool {
		return len(third.segmentsOf(ctx, "cam1", t0, end)) == 10
	})
	mustLen(t, "a's own segments", a.Segments("cam1", t0, end), 5)
	bSegs := b.Segments("cam1", t0, end)
	mustLen(t, "b's own segments", bSegs, 5)
	held := bSegs[1].ID()
	mustLen(t, "b's segments as a sees them", a.segmentsOf(ctx, "cam1", t0, end), 10)

	pl, err := third.Playlist(ctx, "admin", "cam1", t0, end)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(pl), "#EXTINF:"); n != 10 {
		t.Fatalf("%d playlist entries, want 10:\n%s", n, pl)
	}
	if n := strings.Count(string(pl), "#EXT-X-DISCONTINUITY\n"); n != 1 {
		t.Fatalf("%d discontinuities, want 1 at the change of node:\n%s", n, pl)
	}
	if !strings.Contains(string(pl), "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\""+bSegs[0].ID()) {
		t.Fatalf("the discontinuity is not where b's recording starts:\n%s", pl)
	}

	rec, err := third.Recordings(ctx, "admin", "cam1", t0, end)
	if err != nil {
		t.Fatal(err)
	}
	// The test authorizer is no NodesGrant: holders are labelled, not named.
	if len(rec.Spans) != 2 || len(rec.Gaps) != 1 || rec.Spans[0].Holder != "1" || rec.Spans[1].Holder != "2" || rec.Spans[0].Node != "" ||
		math.Abs(rec.Gaps[0].Duration-4) > 0.1 || rec.Spans[0].Segments != 5 {
		b, _ := json.Marshal(rec)
		t.Fatalf("recordings %s; want a's 10 s, a 4 s gap, b's 10 s", b)
	}

	// A held segment served by c is the one b serves itself.
	hc, bc := serve(t, third), serve(t, b)
	for _, q := range []string{"?init=1&a=1&token=admin", "?a=1&token=admin"} {
		uri := "/archive/cam1/" + held + ".mp4" + q
		code1, body1, _ := do(t, hc, "GET", uri, "", nil)
		code2, body2, _ := do(t, bc, "GET", uri, "", nil)
		if code1 != 200 || code2 != 200 || string(body1) != string(body2) {
			t.Fatalf("%s: c answered %d (%d bytes), b %d (%d bytes)", uri, code1, len(body1), code2, len(body2))
		}
	}

	// The download spans both nodes: the hole is on its wall-clock
	// timeline, as in one node's recording with a gap.
	readsA, readsB := a.HeldReads(), b.HeldReads()
	d, err := third.PrepareDownload(ctx, "admin", "cam1", t0, t0.Add(24*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if p := ffprobe(t, writeDownload(t, d)); math.Abs(p.Duration-24) > 0.1 {
		t.Fatalf("download of both nodes' footage lasts %.3f s, want 24", p.Duration)
	}
	if a.HeldReads() == readsA || b.HeldReads() == readsB {
		t.Fatal("the download did not read from both holders")
	}

	// A viewer refused for the footage makes no node read anything.
	third.Authorizer.(*testAuth).notBefore = end
	readsA, readsB = a.HeldReads(), b.HeldReads()
	for _, uri := range []string{
		"/archive/cam1/index.m3u8?token=admin&start=" + rfc(t0) + "&end=" + rfc(end),
		"/archive/cam1/" + held + ".mp4?token=admin",
		"/archive/cam1/download?token=admin&start=" + rfc(t0) + "&end=" + rfc(t0.Add(24*time.Second)),
		"/archive/cam1/recordings?token=admin&start=" + rfc(t0),
	} {
		if code, body, _ := do(t, hc, "GET", uri, "", nil); code != 403 {
			t.Fatalf("%s: %d %s, want 403", uri, code, body)
		}
	}
	if a.HeldReads() != readsA || b.HeldReads() != readsB {
		t.Fatal("a refused viewer's request read segments from their holders")
	}
	third.Authorizer.(*testAuth).notBefore = time.Time{}

	// A holder that is down: its segments are listed, reading one is 503.
	c.setDown("b", true)
	if _, err := third.Playlist(ctx, "admin", "cam1", t0, end); err != nil {
		t.Fatal(err)
	}
	code, body, _ := do(t, hc, "GET", "/archive/cam1/"+held+".mp4?token=admin", "", nil)
	if code != 503 {
		t.Fatalf("a segment of a node that is down: %d %s, want 503", code, body)
	}
	if _, err := third.PrepareDownload(ctx, "admin", "cam1", t0, t0.Add(24*time.Second)); !errors.Is(err, ErrHolderDown) || !strings.Contains(err.Error(), "held by node b") {
		t.Fatalf("a download needing a node that is down: %v, want ErrHolderDown naming b", err)
	}
	c.setDown("b", false)

	// Retention stays with the holder, and its deletions leave the index.
	c.clock.now = t0.Add(7*24*time.Hour + 12*time.Second)
	if n := a.Prune(); n != 5 {
		t.Fatalf("a's retention deleted %d segments, want its 5", n)
	}
	poll.Until(t, "a's deleted segments to leave the shared index", func() bool {
		return len(third.segmentsOf(ctx, "cam1", t0, end)) == 5
	})
}

// The shared index: what a node publishes the others list, a node's own
// segments are not listed back to it, deletions and start-up sync — on a
// Redis server and on a Redis Cluster (every key of a camera in one slot).
func TestRedisIndex(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		testRedisIndex(t, redistest.Start(t, redistest.Options{NoPersistence: true}).Client())
	})
	t.Run("cluster", func(t *testing.T) {
		testRedisIndex(t, redistest.StartCluster(t, 3).Client(t))
	})
}

func testRedisIndex(t *testing.T, client redis.UniversalClient) {
	clock := &fakeClock{now: t0.Add(time.Hour)}
	newIdx := func(node string) *RedisIndex {
		x := &RedisIndex{Client: client, Node: node, TTL: time.Hour, Now: clock.Now}
		if err := x.Initialize(); err != nil {
			t.Fatal(err)
		}
		return x
	}
	a, b := newIdx("a"), newIdx("b")
	ctx := context.Background()
	seg := func(sec int) Segment {
		st := t0.Add(time.Duration(sec) * time.Second)
		return Segment{Start: st, Duration: 2*time.Second + 345*time.Microsecond, Size: 1000 + int64(sec), tracks: 0xabc, stem: st.UnixMicro()}
	}
	if err := a.Publish(ctx, "cam1", []Segment{seg(0), seg(2), seg(4)}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Held(ctx, "cam1", t0.Add(3*time.Second), t0.Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Node() != "a" || got[0] != withNode(seg(2), "a") || got[1] != withNode(seg(4), "a") {
		t.Fatalf("b lists %+v; want a's segments at 2 s and 4 s", got)
	}
	if mine, _ := a.Held(ctx, "cam1", t0, t0.Add(time.Minute)); len(mine) != 0 {
		t.Fatalf("a lists its own segments as held elsewhere: %+v", mine)
	}
	if err := a.Unpublish(ctx, "cam1", []Segment{seg(2)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Held(ctx, "cam1", t0, t0.Add(time.Minute)); len(got) != 2 {
		t.Fatalf("after a deletion b lists %d segments, want 2", len(got))
	}
	// Sync rewrites what differs: a recorded seg(6) and lost seg(0) while
	// Redis was out of reach.
	if err := a.Sync(ctx, ownMap{"cam1": {seg(4), seg(6)}, "cam2": {seg(0)}}); err != nil {
		t.Fatal(err)
	}
	got, _ = b.Held(ctx, "cam1", t0, t0.Add(time.Minute))
	if len(got) != 2 || !got[0].Start.Equal(seg(4).Start) || !got[1].Start.Equal(seg(6).Start) {
		t.Fatalf("after sync b lists %+v", got)
	}
	if got, _ := b.Held(ctx, "cam2", t0, t0.Add(time.Minute)); len(got) != 1 {
		t.Fatalf("after sync b lists %d segments of cam2, want 1", len(got))
	}
	// Every key expires.
	for _, k := range []string{a.nodesKey("cam1"), a.heldKey("cam1", "a"), a.nodesKey("cam2"), a.heldKey("cam2", "a")} {
		if ttl, _ := client.PTTL(ctx, k).Result(); ttl <= 0 {
			t.Errorf("key %s has no TTL (%v)", k, ttl)
		}
	}
	// Garbage in the index is no segment.
	client.ZAdd(ctx, "camgate:archive:{cam1}:n:a", redisZ(0, "not/a/segment"), redisZ(1, "../../x/1/1/1"))
	if got, _ := b.Held(ctx, "cam1", t0.Add(-time.Hour), t0.Add(time.Minute)); len(got) != 2 {
		t.Fatalf("with garbage members b lists %d segments, want 2", len(got))
	}
}

func withNode(s Segment, n string) Segment {
	s.node = n
	s.Duration = s.Duration.Truncate(time.Microsecond)
	return s
}

// Merging: ours wins at the same start, a segment inside an earlier one
// (two nodes recorded for a moment) is left out.
func TestMergeHeld(t *testing.T) {
	at := func(sec float64, dur float64, node string) Segment {
		return Segment{Start: t0.Add(time.Duration(sec * float64(time.Second))), Duration: time.Duration(dur * float64(time.Second)), node: node}
	}
	for _, tc := range []struct {
		name      string
		own, held []Segment
		want      []Segment
	}{
		{"none held", []Segment{at(0, 2, "")}, nil, []Segment{at(0, 2, "")}},
		{"interleaved", []Segment{at(0, 2, ""), at(4, 2, "")}, []Segment{at(2, 2, "b"), at(6, 2, "b")}, []Segment{at(0, 2, ""), at(2, 2, "b"), at(4, 2, ""), at(6, 2, "b")}},
		{"same start: ours", []Segment{at(0, 2, "")}, []Segment{at(0, 2, "b")}, []Segment{at(0, 2, "")}},
		{"covered", []Segment{at(0, 10, "")}, []Segment{at(3, 2, "b"), at(9, 2, "b")}, []Segment{at(0, 10, ""), at(9, 2, "b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeHeld(tc.own, tc.held)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func FuzzDecodeShared(f *testing.F) {
	f.Add(encodeShared(Segment{Start: t0, Duration: 2 * time.Second, Size: 100, tracks: 7}))
	f.Add("2026-11-22_10-00-00-000000/1/1/zz")
	f.Fuzz(func(t *testing.T, m string) {
		sg, ok := decodeShared(m)
		if !ok {
			return
		}
		if sg.Duration <= 0 || sg.Size <= 0 || !validName(sg.name()) || encodeShared(sg) == "" {
			t.Fatalf("%q decoded as %+v", m, sg)
		}
	})
}

func redisZ(score float64, m string) redis.Z { return redis.Z{Score: score, Member: m} }

// ownMap is OwnSegments from a literal.
type ownMap map[string][]Segment

func (m ownMap) Cameras() []string { return slices.Collect(maps.Keys(m)) }
func (m ownMap) Ends(cam string) (int, Segment, Segment) {
	segs := m[cam]
	if len(segs) == 0 {
		return 0, Segment{}, Segment{}
	}
	return len(segs), segs[0], segs[len(segs)-1]
}
func (m ownMap) All(cam string) []Segment { return m[cam] }
