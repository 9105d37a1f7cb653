package gateway

import (
	"bufio"
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

	"github.com/camgate/camgate/gateway/cluster"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// Red team of session 8's fixes: a relay token is bound to the node it
// was minted for (its advertised address in the cluster membership) and a
// relay session ends once that node is no longer a live member.

// rtspDescribeFrom is rtspDescribe from the local address ip.
func rtspDescribeFrom(t *testing.T, n *node, ip, camera, tok string) int {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(n.rtsp, "rtsp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "DESCRIBE %s/%s?token=%s RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n", n.rtsp, camera, tok)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("RTSP DESCRIBE: %v", err)
	}
	var code int
	if _, err := fmt.Sscanf(line, "RTSP/1.0 %d", &code); err != nil {
		t.Fatalf("RTSP status line %q", line)
	}
	return code
}

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
