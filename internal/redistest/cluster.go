package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of primaries (no replicas) on loopback.
type Cluster struct {
	Nodes []*Server
	// URL names every node, as camgate's redis.url takes a Cluster:
	// redis://first?addr=second&addr=third.
	URL string
}

// StartCluster runs n (at least 3) redis-server processes in cluster mode,
// splits the 16384 hash slots between them, joins them and waits until
// every node reports cluster_state:ok.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 3 {
		n = 3
	}
	c := &Cluster{}
	for range n {
		// Each node keeps its cluster config in its own temporary folder.
		s := Start(tb, Options{NoPersistence: true})
		s.args = append(s.args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		s.Restart()
		c.Nodes = append(c.Nodes, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	per := 16384 / n
	for i, s := range c.Nodes {
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		cl := s.Client()
		if err := cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			tb.Fatalf("redistest: CLUSTER ADDSLOTSRANGE on %s: %v", s.Addr, err)
		}
		if i > 0 {
			if err := cl.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(c.Nodes[0].port)).Err(); err != nil {
				tb.Fatalf("redistest: CLUSTER MEET: %v", err)
			}
		}
	}
	for _, s := range c.Nodes {
		cl := s.Client()
		for {
			info, err := cl.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if ctx.Err() != nil {
				tb.Fatalf("redistest: cluster not ok on %s: %v %s", s.Addr, err, info)
			}
			time.Sleep(20 * time.Millisecond) // polling another process's gossip, nothing to wait on
		}
	}
	addrs := make([]string, 0, n-1)
	for _, s := range c.Nodes[1:] {
		addrs = append(addrs, "addr="+s.Addr)
	}
	c.URL = fmt.Sprintf("redis://%s?%s", c.Nodes[0].Addr, strings.Join(addrs, "&"))
	return c
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	tb.Cleanup(func() { _ = cl.Close() })
	return cl
}
