package redisstore

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/redis/go-redis/v9"
)

// NewClient builds a client for standalone Redis, Sentinel or Cluster from one
// URL:
//
//	redis://[user:pw@]host:port/db                      standalone
//	redis://[user:pw@]sentinel:26379/db?master_name=m&addr=sentinel2:26379   Sentinel
//	redis://[user:pw@]node1:6379?addr=node2:6379&addr=node3:6379             Cluster
//	redis://[user:pw@]node1:6379?cluster=true                               Cluster, one seed
//
// rediss:// selects TLS. Other query parameters are go-redis options
// (dial_timeout, pool_size, …). Context deadlines are honoured, which is how
// the change feed detects a Redis that stopped answering.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the whole URL, password included: do not wrap it.
		return nil, errors.New("redisstore: redis url does not parse as a URL")
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: sentinel url: %w", err)
		}
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	case q.Has("addr") || q.Get("cluster") == "true":
		q.Del("cluster")
		u.RawQuery = q.Encode()
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redisstore: cluster url: %w", err)
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: redis url: %w", err)
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	}
}
