package redisstore

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// sentinelDialTimeout is the dial timeout of a Sentinel URL without
// dial_timeout (see ParseURL).
const sentinelDialTimeout = 2 * time.Second

// Topology is what a Redis URL points at.
type Topology string

const (
	Standalone Topology = "standalone"
	Sentinel   Topology = "sentinel"
	Cluster    Topology = "cluster"
)

// URL is a parsed redis.url: which topology and the go-redis options for it.
// Parsing builds no client and opens no connection, so configuration
// validation can use the very rules the gateway connects with.
type URL struct {
	Topology Topology

	standalone *redis.Options
	failover   *redis.FailoverOptions
	cluster    *redis.ClusterOptions
}

// ParseURL reads one URL for standalone Redis, Sentinel or Cluster:
//
//	redis://[user:pw@]host:port/db                      standalone
//	redis://[user:pw@]sentinel:26379/db?master_name=m&addr=sentinel2:26379   Sentinel
//	redis://[user:pw@]node1:6379?addr=node2:6379&addr=node3:6379             Cluster
//	redis://[user:pw@]node1:6379?cluster=true                               Cluster, one seed
//
// rediss:// selects TLS. Other query parameters are go-redis options
// (dial_timeout, pool_size, …; for Sentinel also sentinel_username and
// sentinel_password). Errors never quote the password.
func ParseURL(rawURL string) (*URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the whole URL, password included: do not wrap it.
		return nil, errors.New("redisstore: redis url does not parse as a URL")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, errors.New("redisstore: redis url must start with redis:// or rediss://")
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: sentinel url: %w", err)
		}
		// Every command must go to the primary: commits write, and the
		// change feed read on a lagging replica would miss the latest
		// commits. replica_only would send both to a replica;
		// route_by_latency and route_randomly make NewFailoverClient panic.
		for p, set := range map[string]bool{"replica_only": o.ReplicaOnly, "route_by_latency": o.RouteByLatency, "route_randomly": o.RouteRandomly} {
			if set {
				return nil, fmt.Errorf("redisstore: sentinel url: %s is not supported: camgate reads and writes on the primary only", p)
			}
		}
		// The address of a dead primary stays the answer of the sentinels
		// until they promote a replica (down-after-milliseconds plus the
		// failover, seconds). go-redis' default dial timeout (5 s, per
		// attempt, with retries) would hold a write that long against a
		// host that does not answer; a LAN dial takes milliseconds, so 2 s
		// bounds it without false alarms. An explicit dial_timeout wins.
		if !q.Has("dial_timeout") {
			o.DialTimeout = sentinelDialTimeout
		}
		o.ContextTimeoutEnabled = true
		return &URL{Topology: Sentinel, failover: o}, nil
	case q.Has("addr") || q.Get("cluster") == "true":
		q.Del("cluster")
		u.RawQuery = q.Encode()
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redisstore: cluster url: %w", err)
		}
		o.ContextTimeoutEnabled = true
		return &URL{Topology: Cluster, cluster: o}, nil
	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: redis url: %w", err)
		}
		o.ContextTimeoutEnabled = true
		return &URL{Topology: Standalone, standalone: o}, nil
	}
}

// Addrs lists the addresses the client dials first: the server, the
// sentinels or the cluster seeds.
func (u *URL) Addrs() []string {
	switch u.Topology {
	case Sentinel:
		return u.failover.SentinelAddrs
	case Cluster:
		return u.cluster.Addrs
	}
	return []string{u.standalone.Addr}
}

// NewClient builds the client. Context deadlines are honoured, which is how
// the change feed detects a Redis that stopped answering.
func (u *URL) NewClient() redis.UniversalClient {
	switch u.Topology {
	case Sentinel:
		return redis.NewFailoverClient(u.failover)
	case Cluster:
		return redis.NewClusterClient(u.cluster)
	}
	return redis.NewClient(u.standalone)
}

// NewClient parses rawURL (see ParseURL) and builds its client.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return u.NewClient(), nil
}
