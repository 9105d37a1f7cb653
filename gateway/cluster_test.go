package gateway

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

const testClusterSecret = "cluster-secret-0123456789abcdef-0123"

// startClusterNodes starts nodes sharing one Redis with cluster.enabled,
// each with its own data dir, and a camera cam1 pulled from up.
func startClusterNodes(t *testing.T, redisURL, up string, record bool, ids ...string) ([]*node, []string) {
	t.Helper()
	var nodes []*node
	var dirs []string
	for _, id := range ids {
		dir := t.TempDir()
		n := startNodeWith(t, dir, clusterNodeConfig(redisURL, up, record, id))
		nodes, dirs = append(nodes, n), append(dirs, dir)
	}
	return nodes, dirs
}

// clusterNodeConfig is node id's configuration in startClusterNodes.
func clusterNodeConfig(redisURL, up string, record bool, id string) func(*config.Config) {
	return func(c *config.Config) {
		c.Redis.URL = redisURL
		c.Cluster = config.Cluster{Enabled: true, NodeID: id, Secret: testClusterSecret, LeaseTTL: config.Duration(time.Second)}
		c.Cameras = []config.Camera{{ID: "cam1", Site: "hq", Source: up, Record: record}}
		c.Archive.SegmentDuration = config.Duration(time.Second)
	}
}

// segments counts cam1's recorded segment files under dir.
func segments(dir string) int {
	count := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, string(filepath.Separator)+"cam1"+string(filepath.Separator)) && strings.HasSuffix(p, ".mp4") {
			count++
		}
		return nil
	})
	return count
}

// Issue 17 end to end: three nodes, one camera, viewers on every node. The
// camera sees one connection for the whole cluster; one node records it;
// when the owner is stopped, another takes it over, the viewers on the
// surviving nodes keep their sessions and keep receiving video, and the
// camera still sees one connection.
func TestClusterPullsEachCameraOnce(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, mediatest.Clip{Name: "h264", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p"}, Ext: "mkv"})
	nodes, dirs := startClusterNodes(t, r.URL, up.URL(), true, "na", "nb", "nc")
	mustCall(t, nodes[0], "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, nodes[0], "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	tok := viewerToken(t, "alice")
	packets := make([]*atomic.Int64, len(nodes))
	for i, n := range nodes {
		packets[i] = &atomic.Int64{}
		poll.Until(t, "alice's grant to reach node "+n.g.Config.Cluster.NodeID, func() bool { return n.allows(t, "alice") })
		c := playRTSPCounting(t, n, tok, packets[i])
		defer c.Close()
	}
	poll.Until(t, "every viewer to receive video", func() bool {
		for _, p := range packets {
			if p.Load() < 20 {
				return false
			}
		}
		return true
	})
	if got := up.Readers(); got != 1 {
		t.Fatalf("the camera has %d readers with three nodes and three viewers; want 1", got)
	}
	owner := -1
	for i, n := range nodes {
		if _, ok := n.g.cluster.Load().Owns("cam1"); ok {
			if owner >= 0 {
				t.Fatalf("nodes %d and %d both own cam1", owner, i)
			}
			owner = i
		}
	}
	if owner < 0 {
		t.Fatal("no node owns cam1")
	}
	// Changes re-check every session of the camera, relays included: a
	// relay (no subject, no link) must survive them.
	mustCall(t, nodes[0], "PUT", "/grants/g-other", `{"subject":"alice","device":"cam1","actions":["archive"]}`, 200)
	mustCall(t, nodes[1], "PUT", "/devices/cam1", `{"site":"hq","kind":"camera","name":"Renamed","source":"`+up.URL()+`","record":true}`, 200)
	relays := func() map[string]bool {
		ids := map[string]bool{}
		for _, ss := range nodes[owner].g.Sessions().List() {
			if ss.Relay != "" {
				ids[ss.ID] = true
			}
		}
		return ids
	}
	before := relays()
	if len(before) != 2 {
		t.Fatalf("the owner feeds %d relays; want the other two nodes", len(before))
	}
	mid := make([]int64, len(nodes))
	for i := range nodes {
		mid[i] = packets[i].Load()
	}
	poll.Until(t, "every viewer to keep receiving video after the changes", func() bool {
		for i, p := range packets {
			if p.Load() < mid[i]+20 {
				return false
			}
		}
		return true
	})
	if after := relays(); len(after) != 2 || !maps.Equal(after, before) {
		t.Fatalf("the changes ended relays: %v before, %v after", before, after)
	}
	// Every node's API shows the owner, and the viewers of every node.
	ownerID := nodes[owner].g.Config.Cluster.NodeID
	for i, n := range nodes {
		var cam map[string]any
		poll.Until(t, "node "+n.g.Config.Cluster.NodeID+" to list every node's viewer", func() bool {
			cam = mustCall(t, n, "GET", "/cameras/cam1", "", 200)
			v, _ := cam["viewers"].(map[string]any)
			return v["na"] == float64(1) && v["nb"] == float64(1) && v["nc"] == float64(1)
		})
		o, _ := cam["owner"].(map[string]any)
		if o == nil || o["node"] != ownerID || o["self"] != (i == owner) || cam["recording"] != (i == owner) {
			t.Fatalf("node %d shows cam1 as %v", i, cam)
		}
		if want := map[bool]float64{true: 2, false: 0}[i == owner]; cam["relays"] != want {
			t.Fatalf("node %d feeds %v relays; want %v", i, cam["relays"], want)
		}
		// The same in /metrics; relays are not counted as viewer sessions.
		_, _, m := httpStatus(t, "GET", strings.TrimSuffix(n.api, "/api/v1")+"/metrics", "", "")
		owned, relayLine := "camgate_cluster_owned_cameras 0", `camgate_relay_sessions{camera="cam1"} 2`
		if i == owner {
			owned = "camgate_cluster_owned_cameras 1"
		}
		if !strings.Contains(m, owned+"\n") || strings.Contains(m, relayLine) != (i == owner) || !strings.Contains(m, `camgate_sessions{protocol="rtsp",camera="cam1"} 1`+"\n") {
			t.Fatalf("node %d's metrics: want %q, relays %v, one rtsp viewer session:\n%s", i, owned, i == owner, m)
		}
		if pulls := strings.Contains(m, `camgate_relay_pulls{camera="cam1"} 1`+"\n"); pulls == (i == owner) {
			t.Fatalf("node %d's metrics: relays in %v, want %v:\n%s", i, pulls, i != owner, m)
		}
	}
	poll.Until(t, "the owner to record a segment", func() bool { return segments(dirs[owner]) >= 2 })
	for i, d := range dirs {
		if i != owner && segments(d) != 0 {
			t.Fatalf("node %d, not the owner, recorded %d segments", i, segments(d))
		}
	}

	// The owner stops (its leases are given back on the way out).
	stopped := time.Now()
	nodes[owner].g.Close()
	var alive []int
	for i := range nodes {
		if i != owner {
			alive = append(alive, i)
		}
	}
	next := -1
	poll.Until(t, "another node to own cam1", func() bool {
		for _, i := range alive {
			if _, ok := nodes[i].g.cluster.Load().Owns("cam1"); ok {
				next = i
				return true
			}
		}
		return false
	})
	at := make([]int64, len(nodes))
	for _, i := range alive {
		at[i] = packets[i].Load()
	}
	poll.Until(t, "the surviving viewers to receive video again", func() bool {
		for _, i := range alive {
			if packets[i].Load() < at[i]+20 {
				return false
			}
		}
		return true
	})
	t.Logf("owner %s stopped; %s took cam1 and the surviving viewers had video again after %v",
		nodes[owner].g.Config.Cluster.NodeID, nodes[next].g.Config.Cluster.NodeID, time.Since(stopped))
	for _, i := range alive {
		if nodes[i].g.Sessions().CountSubject("alice") != 1 {
			t.Fatalf("node %d's viewer session did not survive the failover: %+v", i, nodes[i].g.Sessions().List())
		}
	}
	poll.Until(t, "the camera to have one reader again", func() bool { return up.Readers() == 1 })
	rec := segments(dirs[next])
	poll.Until(t, "the new owner to record", func() bool { return segments(dirs[next]) > rec })
}

// A relay token (minted with cluster.secret) pulls a camera over RTSP, the
// relay's only protocol; on every other edge it is no credential: 401, and
// no session is opened.
func TestRelayTokenIsRTSPOnly(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, mediatest.Clip{Name: "h264", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p"}, Ext: "mkv"})
	nodes, _ := startClusterNodes(t, r.URL, up.URL(), false, "na")
	n := nodes[0]
	tok := relayTokenOf(n, "cam1") // its own: a live member at this address
	got := edgeStatuses(t, n, "cam1", tok, whepOffer(t))
	want := map[string]int{"rtsp": 200, "hls": 401, "whep": 401, "archive": 401, "snapshot": 401, "snapshot at": 401}
	if !maps.Equal(got, want) {
		t.Fatalf("relay token through every edge: %v, want %v", got, want)
	}
	for _, s := range n.g.registry.List() {
		if s.Protocol != "rtsp" {
			t.Errorf("a relay token opened a %s session: %+v", s.Protocol, s)
		}
	}
}
