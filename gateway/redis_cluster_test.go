package gateway

import (
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// TestTwoNodesOnRedisCluster runs two gateways, with cluster.enabled, on a
// real Redis Cluster of three primaries (redis.url naming all three), and
// goes through every kind of shared state once: the permission store and
// its change feed (a grant on A is a decision on B, a revoke on A ends B's
// viewer), share links and their change stream (a link made on A plays on
// B, disabling it on A ends that viewer), stream credentials (made on A,
// used on B, revoked on A), the cross-node session list and kick, and
// camera ownership (one node pulls the camera for both). A key that
// crossed hash slots in a script or transaction would fail here with
// CROSSSLOT.
func TestTwoNodesOnRedisCluster(t *testing.T) {
	rc := redistest.StartCluster(t, 3)
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, mediatest.Clip{Name: "h264", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p"}, Ext: "mkv"})
	var nodes []*node
	for _, id := range []string{"na", "nb"} {
		nodes = append(nodes, startNodeWith(t, t.TempDir(), func(c *config.Config) {
			c.Redis.URL = rc.URL
			c.Cluster = config.Cluster{Enabled: true, NodeID: id, Secret: testClusterSecret, LeaseTTL: config.Duration(time.Second)}
			c.Cameras = []config.Camera{{ID: "cam1", Site: "hq", Source: up.URL()}}
		}))
	}
	a, b := nodes[0], nodes[1]

	mustCall(t, a, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, a, "PUT", "/subjects/bob", `{"kind":"user"}`, 200)
	mustCall(t, a, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	mustCall(t, a, "PUT", "/grants/g-bob", `{"subject":"bob","device":"cam1","actions":["live"]}`, 200)
	poll.Until(t, "B to allow alice and bob", func() bool { return b.allows(t, "alice") && b.allows(t, "bob") })

	aliceOnB := playRTSP(t, b, viewerToken(t, "alice"))
	defer aliceOnB.Close()
	bobOnA := playRTSP(t, a, viewerToken(t, "bob"))
	defer bobOnA.Close()
	poll.Until(t, "one upstream connection for both nodes", func() bool { return up.Readers() == 1 })

	mustCall(t, a, "DELETE", "/grants/g-alice", "", 200)
	waitClientEnded(t, aliceOnB, "alice's session on B after the revoke on A")

	var id string
	poll.Until(t, "B to list bob's session on A", func() bool { id, _ = sessionOn(t, b, "bob"); return id != "" })
	mustCall(t, b, "DELETE", "/sessions/"+id, "", 200)
	waitClientEnded(t, bobOnA, "bob's session on A after a kick on B")

	link := mustCall(t, a, "POST", "/links", `{"device":"cam1","actions":["live"],"not_after":"`+
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`, 201)
	linkOnB := playRTSP(t, b, link["token"].(string))
	defer linkOnB.Close()
	mustCall(t, a, "POST", "/links/"+link["id"].(string)+"/disable", "", 200)
	waitClientEnded(t, linkOnB, "the link's viewer on B after the link was disabled on A")

	cred := createCred(t, a, testAdminKey, `{"subject":"bob"}`)
	credOnB, err := playURL(t, credURL(b, cred, "cam1"))
	if err != nil {
		t.Fatalf("bob's stream credential made on A, on B: %v", err)
	}
	defer credOnB.Close()
	mustCall(t, a, "DELETE", "/stream-credentials/"+cred.id, "", 200)
	waitClientEnded(t, credOnB, "the credential's session on B after its revoke on A")
}
