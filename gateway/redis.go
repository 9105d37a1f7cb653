package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/redisstore"
	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/ptz"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/internal/backoff"
	"github.com/camgate/camgate/links"
	linkstore "github.com/camgate/camgate/links/redisstore"
)

// redisNode is what a node shares with the others through Redis (redis.url
// set): the permission store and its change feed, PTZ leases, the session
// directory and the share links with their change feed. Nil when redis.url is empty: everything stays node-local.
type redisNode struct {
	client    redis.UniversalClient
	store     *redisstore.Store
	leases    *ptz.RedisLeases
	directory *session.Directory
	links     *linkstore.Store
	// linkFeed reads the link feed on a client of its own: while Redis is
	// down its retries are failed dials, and on the shared client they
	// count towards go-redis' dial circuit breaker (PoolSize consecutive
	// failures make every new dial answer the cached error until a probe,
	// once a second, succeeds), which kept writes failing for a while
	// after Redis was back (TestRedisRestartBothNodesRecover).
	linkFeed *linkstore.Store
}

// startRedis connects to redis.url and prepares the shared store and PTZ
// leases; it runs before the permission service is created. Without a URL
// it does nothing.
func (g *Gateway) startRedis() error {
	if g.Config.Redis.URL == "" {
		return nil
	}
	c, err := redisstore.NewClient(g.Config.Redis.URL)
	if err != nil {
		return fmt.Errorf("redis.url: %w", err)
	}
	g.closers = append(g.closers, func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	st := &redisstore.Store{Client: c, Logger: g.Logger.With("component", "redis-store")}
	if err := st.Initialize(); err != nil {
		return err
	}
	fc, err := redisstore.NewClient(g.Config.Redis.URL)
	if err != nil {
		return fmt.Errorf("redis.url: %w", err)
	}
	g.closers = append(g.closers, func() { _ = fc.Close() })
	g.redis = &redisNode{client: c, store: st, leases: ptz.NewRedisLeases(c), links: linkstore.New(c, ""), linkFeed: linkstore.New(fc, "")}
	return nil
}

// startDirectory publishes this node's sessions for the others; it runs once
// the session registry exists.
func (g *Gateway) startDirectory() error {
	if g.redis == nil {
		return nil
	}
	d := &session.Directory{Client: g.redis.client, Registry: g.registry, Logger: g.Logger.With("component", "session-directory")}
	if g.Config.Cluster.Enabled {
		d.Node = g.Config.Cluster.NodeID // "" keeps the directory's own default
	}
	if err := d.Initialize(); err != nil {
		return err
	}
	g.closers = append(g.closers, d.Close)
	g.redis.directory = d
	return nil
}

// authzStore is the shared store, or nil (the embedded default).
func (g *Gateway) authzStore() authz.Store {
	if g.redis == nil {
		return nil
	}
	return g.redis.store
}

// leaseStore is where PTZ leases live.
func (g *Gateway) leaseStore() ptz.LeaseStore {
	if g.redis == nil {
		return ptz.NewMemoryLeases()
	}
	return g.redis.leases
}

// sessionsAPI lists and kicks sessions for the API: every node's through
// the directory, or this node's.
func (g *Gateway) sessionsAPI() httpapi.Sessions {
	if g.redis == nil || g.redis.directory == nil {
		return g.registry
	}
	return g.redis.directory
}

// linksStore is the shared link registry, or nil (the embedded default).
func (g *Gateway) linksStore() links.Store {
	if g.redis == nil {
		return nil
	}
	return g.redis.links
}

// linkFeedPosition is the link feed's revision, read before the link
// service loads its links so that no change falls between the two.
func (g *Gateway) linkFeedPosition() (uint64, error) {
	if g.redis == nil {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return g.redis.linkFeed.FeedRev(ctx)
}

// Backoff of the link feed reader after a Redis error.
const (
	linkFeedRetryMin = 100 * time.Millisecond
	linkFeedRetryMax = 2 * time.Second
)

// followLinkChanges applies every link write (of any node, this one's
// included: one extra store read each) from the shared store's link feed:
// the cached link is dropped and its sessions re-checked. The feed is read
// by revision, so a node whose Redis connection broke resumes where it
// stopped and misses no change; after a gap it cannot bridge (the feed
// trimmed past it, Redis lost data) it reloads every link and re-checks
// every session.
func (g *Gateway) followLinkChanges(from uint64) {
	if g.redis == nil {
		return
	}
	st := g.redis.linkFeed
	log := g.Logger.With("component", "link-feed")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		retry := backoff.Backoff{Min: linkFeedRetryMin, Max: linkFeedRetryMax}
		last, gap := from, false
		for ctx.Err() == nil {
			if gap {
				rev, err := st.FeedRev(ctx)
				if err == nil {
					err = g.links.Reload()
				}
				if err != nil {
					log.Warn("link feed: reloading the links after a gap", "error", err)
					_ = retry.Sleep(ctx, retry.Delay())
					continue
				}
				log.Warn("link feed had a gap: every link reloaded, every session re-checked", "from", last, "now", rev)
				g.invalidations.push(session.Change{All: true})
				last, gap = rev, false
			}
			started := time.Now()
			var err error
			last, err = st.Watch(ctx, last, func(id string) {
				g.links.Forget(id)
				g.invalidations.push(session.Change{Links: []string{id}})
			})
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, linkstore.ErrFeedGap) {
				gap = true
				continue
			}
			log.Warn("link feed: Redis error, resuming from the last change read", "rev", last, "error", err)
			retry.ResetAfter(time.Since(started))
			_ = retry.Sleep(ctx, retry.Delay())
		}
	}()
	g.closers = append(g.closers, func() { cancel(); <-done })
}
