package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/redisstore"
	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/ptz"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/links"
	linkstore "github.com/camgate/camgate/links/redisstore"
)

// redisNode is what a node shares with the others through Redis (redis.url
// set): the permission store and its change feed, PTZ leases and the session
// directory. Nil when redis.url is empty: everything stays node-local.
type redisNode struct {
	client    redis.UniversalClient
	store     *redisstore.Store
	leases    *ptz.RedisLeases
	directory *session.Directory
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
	g.redis = &redisNode{client: c, store: st, leases: ptz.NewRedisLeases(c)}
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

// linkChannel carries the ids of changed share links between nodes, so a
// link disabled on one node ends its viewers on every node.
const linkChannel = "camgate:links:changed"

// linksStore is the shared link registry, or nil (the embedded default).
func (g *Gateway) linksStore() links.Store {
	if g.redis == nil {
		return nil
	}
	return linkstore.New(g.redis.client, "")
}

// publishLinkChange tells the other nodes that link id changed.
func (g *Gateway) publishLinkChange(id string) {
	if g.redis == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.redis.client.Publish(ctx, linkChannel, id).Err(); err != nil {
		g.Logger.Warn("announcing a link change to the other nodes", "link", id, "error", err)
	}
}

// followLinkChanges applies the other nodes' link changes here: the cached
// link is dropped and its sessions re-checked. Pub/Sub is at-most-once: a
// node disconnected while a link changed still refuses new viewers of a
// disabled link once its cached copy is re-read, but open viewers on that
// node are only re-checked by the next change (docs/redis.md).
func (g *Gateway) followLinkChanges() {
	if g.redis == nil {
		return
	}
	ps := g.redis.client.Subscribe(context.Background(), linkChannel)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ps.Channel() {
			g.links.Forget(msg.Payload)
			g.invalidations.push(session.Change{Links: []string{msg.Payload}})
		}
	}()
	g.closers = append(g.closers, func() { _ = ps.Close(); <-done })
}
