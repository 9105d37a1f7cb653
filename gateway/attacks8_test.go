package gateway

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtp"
	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/gateway/cluster"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// Red team of session 8's fixes: a relay token is bound to the node it
// was minted for (its advertised address in the cluster membership) and a
// relay session ends once that node is no longer a live member.

// relaySessions lists the relay sessions n feeds, as "node@remote-ip".
func relaySessions(n *node) map[string]bool {
	out := map[string]bool{}
	for _, ss := range n.g.Sessions().List() {
		if ss.Relay != "" {
			host, _, _ := net.SplitHostPort(ss.Remote)
			out[ss.Relay+"@"+host] = true
		}
	}
	return out
}

// announce writes a member into the cluster membership as a node's
// heartbeat does (gateway/cluster), valid for ttl.
func announce(t *testing.T, r *redistest.Server, id, addr string, ttl time.Duration) {
	t.Helper()
	b, _ := json.Marshal(cluster.Member{ID: id, Addr: addr, Joined: time.Now().UnixMilli()})
	ctx := t.Context()
	c := r.Client()
	if err := c.Set(ctx, "{camgate:cluster}:node:"+id, b, ttl).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ZAdd(ctx, "{camgate:cluster}:nodes", redis.Z{Score: float64(time.Now().Add(ttl).UnixMilli()), Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestAttack8RelayTokenBoundToNode: two real nodes on two loopback
// addresses (na on 127.0.0.1, nb on 127.0.0.2) relay cam1 from its owner
// to the other one. The pulling node's own token, replayed from
// 127.0.0.9 within its minute, is refused with the 401 of any bad
// credential and opens nothing; a relay session whose node leaves the
// membership (or whose heartbeat expires) is ended by the owner within one
// relay re-check (lease_ttl / 3, plus the heartbeat's TTL when it
// expires).
func TestAttack8RelayTokenBoundToNode(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, mediatest.Clip{Name: "h264", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p"}, Ext: "mkv"})
	ips := map[string]string{"na": "127.0.0.1", "nb": "127.0.0.2"}
	var nodes []*node
	for _, id := range []string{"na", "nb"} {
		nodes = append(nodes, startNodeWith(t, t.TempDir(), func(c *config.Config) {
			clusterNodeConfig(r.URL, up.URL(), true, id)(c)
			c.RTSP.Listen = ips[id] + ":0"
			c.Limits.AuthFailuresPerMinute = 1000 // the attacker fails several times from one address
		}))
	}
	mustCall(t, nodes[0], "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, nodes[0], "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	var packets [2]atomic.Int64
	for i, n := range nodes {
		poll.Until(t, "alice's grant to reach every node", func() bool { return n.allows(t, "alice") })
		c := playRTSPCounting(t, n, viewerToken(t, "alice"), &packets[i])
		defer c.Close()
	}
	poll.Until(t, "both viewers to receive video", func() bool { return packets[0].Load() > 20 && packets[1].Load() > 20 })
	var O, P *node // the owner, the node pulling from it
	for _, n := range nodes {
		if _, ok := n.g.cluster.Load().Owns("cam1"); ok {
			O = n
		} else {
			P = n
		}
	}
	if O == nil || P == nil {
		t.Fatal("no node owns cam1, or both do")
	}
	pid := P.g.Config.Cluster.NodeID
	legit := map[string]bool{pid + "@" + ips[pid]: true}
	poll.Until(t, "the owner to feed the other node's relay", func() bool { return len(relaySessions(O)) == 1 })
	if got := relaySessions(O); !got[pid+"@"+ips[pid]] {
		t.Errorf("the owner feeds %v; want %v (the relay comes from its node's advertised address)", got, legit)
	}

	t.Run("the pulling node's token replayed from elsewhere", func(t *testing.T) {
		tok := relayTokenOf(P, "cam1")
		before := packets[1].Load() + packets[0].Load()
		for _, from := range []string{"127.0.0.9", "127.0.0.3"} {
			if got := rtspDescribeFrom(t, O, from, "cam1", tok); got != 401 {
				t.Errorf("the relay token of %s (%s) replayed from %s: RTSP %d, want 401", pid, ips[pid], from, got)
			}
			if c, err := mediatest.PlayFrom(t, O.rtsp+"/cam1?token="+tok, from, nil); err == nil {
				c.Close()
				t.Errorf("the relay token of %s replayed from %s plays cam1", pid, from)
			}
		}
		if got := relaySessions(O); len(got) != 1 || !got[pid+"@"+ips[pid]] {
			t.Errorf("after the replays the owner feeds %v; want only %v", got, legit)
		}
		// A garbage token gets the same status: no oracle for a good MAC.
		if got := rtspDescribeFrom(t, O, "127.0.0.9", "cam1", tok[:len(tok)-2]+"xx"); got != 401 {
			t.Errorf("a forged relay token: RTSP %d, want 401", got)
		}
		poll.Until(t, "the real relay to keep feeding the viewers", func() bool { return packets[1].Load()+packets[0].Load() > before+20 })
	})

	ttl := time.Duration(O.g.Config.Cluster.LeaseTTL)
	for _, c := range []struct {
		name, id, ip string
		leave        func(id string)
		bound        time.Duration
	}{
		{"a node that leaves the membership", "nx", "127.0.0.3", func(id string) {
			ctx := t.Context()
			r.Client().Del(ctx, "{camgate:cluster}:node:"+id)
			r.Client().ZRem(ctx, "{camgate:cluster}:nodes", id)
		}, ttl/3 + ttl},
		{"a node whose heartbeat expires", "ny", "127.0.0.4", func(string) {}, ttl + ttl/3 + ttl},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A node (announced by hand, pulling with gortsplib from its
			// address) opens a relay with a token minted for it.
			announce(t, r, c.id, c.ip+":8554", ttl)
			var got atomic.Int64
			cl, err := mediatest.PlayFrom(t, O.rtsp+"/cam1?token="+mintRelayToken(O, c.id, c.ip, "cam1"), c.ip,
				func(*description.Media, *rtp.Packet) { got.Add(1) })
			if err != nil {
				t.Fatalf("%s's relay from its own address: %v", c.id, err)
			}
			defer cl.Close()
			ended := make(chan time.Time, 1)
			go func() { _ = cl.Wait(); ended <- time.Now() }()
			poll.Until(t, c.id+"'s relay to receive video", func() bool { return got.Load() > 10 })
			if s := relaySessions(O); !s[c.id+"@"+c.ip] {
				t.Fatalf("the owner feeds %v; want %s's relay", s, c.id)
			}
			left := time.Now()
			c.leave(c.id)
			select {
			case at := <-ended:
				t.Logf("%s: the relay ended %v after it left (bound %v)", c.name, at.Sub(left).Round(time.Millisecond), c.bound)
			case <-time.After(c.bound + 5*time.Second):
				t.Fatalf("%s: the relay still runs %v later (bound %v)", c.name, time.Since(left).Round(time.Millisecond), c.bound)
			}
			poll.Until(t, "the owner to drop the relay session", func() bool { return !relaySessions(O)[c.id+"@"+c.ip] })
			// Its token no longer opens anything, from its own address either.
			if code := rtspDescribeFrom(t, O, c.ip, "cam1", mintRelayToken(O, c.id, c.ip, "cam1")); code != 401 {
				t.Errorf("a token for %s, no longer a member: RTSP %d, want 401", c.id, code)
			}
		})
	}
	if got := relaySessions(O); len(got) != 1 || !got[pid+"@"+ips[pid]] {
		t.Fatalf("the owner feeds %v at the end; want only %v", got, legit)
	}
}

// relayTokenOf is the token node n presents to pull camera from its owner.
func relayTokenOf(n *node, camera string) string {
	c := n.g.cluster.Load()
	return n.g.access.RelayToken(c.ID, hostOf(c.Addr), camera)
}

// mintRelayToken mints, with n's cluster secret, a relay token for node id
// at ip.
func mintRelayToken(n *node, id, ip, camera string) string {
	return n.g.access.RelayToken(id, ip, camera)
}

// TestAttack8HiddenRecordWrites: an individual-access admin that writes a
// record it does not see (PUT, and the POST actions on it) gets exactly
// the 404 a missing record gets (GET of a missing id: the same body, the
// id aside), and nothing changes. Before, a PUT answered 403 ("created by
// another admin") and an action a 404 with another text: both told the
// admin the id exists.
func TestAttack8HiddenRecordWrites(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/orgs/acme", `{"name":"Acme"}`, 200)
	mustCall(t, n, "PUT", "/sites/vault", `{"org":"acme","name":"Vault"}`, 200)
	mustCall(t, n, "PUT", "/devices/cam9", `{"site":"vault","kind":"camera","source":"builtin:demo"}`, 200)
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam9","actions":["live"]}`, 200)
	mustCall(t, n, "PUT", "/groups/staff", `{"members":["alice"]}`, 200)
	mustCall(t, n, "PUT", "/roles/ops", `{"sections":["orgs:read","orgs:write","sites:read","sites:write","devices:read","devices:write","subjects:read","subjects:write","grants:read","grants:write","groups:read","groups:write"],"individual_access":true}`, 200)
	ops := mustCall(t, n, "POST", "/admins", `{"roles":["ops"]}`, 201)["key"].(string)
	// What root sees of every hidden record, before and after.
	paths := []string{"/orgs/acme", "/sites/vault", "/devices/cam9", "/subjects/alice", "/grants/g-alice", "/groups/staff"}
	state := func() string {
		var b strings.Builder
		for _, p := range paths {
			fmt.Fprintln(&b, p, mustCall(t, n, "GET", p, "", 200))
		}
		return b.String()
	}
	before := state()
	same404 := func(what, hiddenID string, code int, out map[string]any, missingPath, missingID string) {
		t.Helper()
		mcode, mout := n.callAs(t, ops, "GET", missingPath, "")
		want := strings.ReplaceAll(fmt.Sprint(mout), missingID, hiddenID)
		if code != 404 || mcode != 404 || fmt.Sprint(out) != want {
			t.Errorf("ops %s (hidden): %d %v; a missing record: %d %v; want the same 404", what, code, out, mcode, want)
		}
	}
	for _, c := range []struct{ kind, id, body string }{
		{"orgs", "acme", `{"name":"Mine now"}`},
		{"sites", "vault", `{"name":"Mine now"}`},
		{"devices", "cam9", `{"site":"vault","kind":"camera","source":"rtsp://10.0.0.66/x"}`},
		{"devices", "cam9", `{"site":"vault","kind":"camera","source":"builtin:demo","transport":"udp"}`},
		{"subjects", "alice", `{"kind":"user","name":"Mallory"}`},
		{"grants", "g-alice", `{"subject":"alice","device":"cam9","actions":["live","archive"]}`},
		{"groups", "staff", `{"members":[]}`},
	} {
		code, out := n.callAs(t, ops, "PUT", "/"+c.kind+"/"+c.id, c.body)
		same404("PUT /"+c.kind+"/"+c.id+" "+c.body, c.id, code, out, "/"+c.kind+"/nosuch", "nosuch")
	}
	for _, c := range []struct{ kind, id, verb string }{
		{"sites", "vault", "arm"}, {"sites", "vault", "disarm"}, {"devices", "cam9", "alarm"}, {"orgs", "acme", "allow-provider"},
	} {
		code, out := n.callAs(t, ops, "POST", "/"+c.kind+"/"+c.id+"/"+c.verb, "")
		mcode, mout := n.callAs(t, ops, "POST", "/"+c.kind+"/nosuch/"+c.verb, "")
		want := strings.ReplaceAll(fmt.Sprint(mout), "nosuch", c.id)
		if code != 404 || mcode != 404 || fmt.Sprint(out) != want {
			t.Errorf("ops POST /%s/%s/%s (hidden): %d %v; missing: %d %v; want the same 404", c.kind, c.id, c.verb, code, out, mcode, want)
		}
	}
	if after := state(); after != before {
		t.Fatalf("writes refused to ops changed hidden records\n%s\n%s", before, after)
	}
	// What ops creates, it writes.
	mustCall(t, n, "PUT", "/sites/hq2", `{"name":"HQ2"}`, 200)
	if code, out := n.callAs(t, ops, "PUT", "/subjects/bob", `{"kind":"user"}`); code/100 != 2 {
		t.Fatalf("ops creates a subject: %d %v", code, out)
	}
	if code, out := n.callAs(t, ops, "PUT", "/subjects/bob", `{"kind":"user","name":"Bob"}`); code != 200 || out["name"] != "Bob" {
		t.Fatalf("ops changes its subject: %d %v", code, out)
	}
}

// TestAttack8RecordingsHideNodeIDs: cam1's footage is held by two real
// nodes (na then nb). GET /archive/cam1/recordings, at either node, tells
// a viewer with `archive` (and a share link) where the holder changes —
// two spans, a gap, opaque per-response holder labels — but never a node
// id; a viewer holding `settings` on the camera also gets the ids. The
// refused credentials still get their 401/403 and read nothing.
func TestAttack8RecordingsHideNodeIDs(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	var nodes []*node
	for _, id := range []string{"na", "nb"} {
		nodes = append(nodes, startNodeWith(t, t.TempDir(), func(c *config.Config) {
			clusterNodeConfig(r.URL, "builtin:demo", false, id)(c)
			c.Archive.SegmentDuration = config.Duration(2 * time.Second)
		}))
	}
	A, B := nodes[0], nodes[1]
	start := time.Now().Add(-60 * time.Second).Truncate(time.Second)
	segsA := recordFootage(t, A, "cam1", start, 10*time.Second)
	segsB := recordFootage(t, B, "cam1", start.Add(14*time.Second), 10*time.Second)
	end := segsB[len(segsB)-1].End()
	for _, s := range []string{"alice", "ivan", "bob"} {
		mustCall(t, A, "PUT", "/subjects/"+s, `{"kind":"user"}`, 200)
	}
	mustCall(t, A, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["archive"]}`, 200)
	mustCall(t, A, "PUT", "/grants/g-ivan", `{"subject":"ivan","device":"cam1","actions":["archive","settings"]}`, 200)
	mustCall(t, A, "PUT", "/grants/g-bob", `{"subject":"bob","device":"cam1","actions":["live"]}`, 200)
	link := mustCall(t, A, "POST", "/links", `{"device":"cam1","actions":["archive"],"not_after":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`, 201)["token"].(string)
	alice, ivan := viewerToken(t, "alice"), viewerToken(t, "ivan")
	for _, n := range nodes {
		poll.Until(t, "the grants and both nodes' segments to reach every node", func() bool {
			code, body := archiveStatus(t, n, "recordings", ivan, start, end)
			_, err := n.g.links.Verify(link)
			return code == 200 && spanSegments(t, body) == len(segsA)+len(segsB) && err == nil
		})
	}
	for _, n := range nodes {
		at := n.g.Config.Cluster.NodeID
		for name, tok := range map[string]string{"alice (archive)": alice, "a share link": link} {
			code, body := archiveStatus(t, n, "recordings", tok, start, end)
			var rec archive.Recordings
			if err := json.Unmarshal([]byte(body), &rec); code != 200 || err != nil {
				t.Fatalf("%s at %s: %d %s", name, at, code, body)
			}
			if strings.Contains(body, `"na"`) || strings.Contains(body, `"nb"`) || strings.Contains(body, `"node"`) {
				t.Errorf("%s at %s learns node ids: %s", name, at, body)
			}
			if len(rec.Spans) != 2 || len(rec.Gaps) != 1 || rec.Spans[0].Holder == "" || rec.Spans[1].Holder == "" ||
				rec.Spans[0].Holder == rec.Spans[1].Holder || rec.Spans[0].Segments != len(segsA) {
				t.Errorf("%s at %s: %s; want two spans by two holders and the gap between them", name, at, body)
			}
		}
		code, body := archiveStatus(t, n, "recordings", ivan, start, end)
		var rec archive.Recordings
		if err := json.Unmarshal([]byte(body), &rec); code != 200 || err != nil || len(rec.Spans) != 2 ||
			rec.Spans[0].Node != "na" || rec.Spans[1].Node != "nb" {
			t.Errorf("ivan (settings) at %s: %d %s; want the spans of na and nb by id", at, code, body)
		}
		reads := A.g.archive.HeldReads() + B.g.archive.HeldReads()
		for name, c := range map[string]struct {
			tok  string
			want int
		}{"bob (live only)": {viewerToken(t, "bob"), 403}, "the admin key": {testAdminKey, 401}, "garbage": {"x.y.z", 401}} {
			if code, body := archiveStatus(t, n, "recordings", c.tok, start, end); code != c.want || strings.Contains(body, `"n`) {
				t.Errorf("%s: recordings at %s %d %s, want %d", name, at, code, body, c.want)
			}
		}
		if got := A.g.archive.HeldReads() + B.g.archive.HeldReads() - reads; got != 0 {
			t.Errorf("refused recordings requests read %d segments", got)
		}
	}
}
