package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Directory makes the sessions of every node visible and kickable from any
// node (DELETE /api/v1/sessions/{id} works wherever it lands). Each node
// writes its Registry's sessions to a Redis hash of its own (expiring unless
// renewed every Heartbeat, so a node that dies drops out), List reads every
// live node's hash, and Kick of a session held elsewhere is published on the
// owning node's channel, where its Directory kicks it locally.
//
// Keys (Prefix "camgate:sessions:"):
//
//	camgate:sessions:nodes        sorted set  node → last heartbeat (unix ms)
//	camgate:sessions:node:<node>  hash        session id → session JSON, TTL 3×Heartbeat
//	camgate:sessions:kick:<node>  channel     session ids to kick
//
// The Registry stays the owner of this node's sessions and works unchanged
// without a Directory.
type Directory struct {
	// Client is the shared Redis connection (required; not closed here).
	Client redis.UniversalClient
	// Registry is this node's registry (required).
	Registry *Registry
	// Node names this node. Default: hostname and a random suffix.
	Node string
	// Prefix of the keys. Default "camgate:sessions:".
	Prefix string
	// Heartbeat is how often this node's sessions are written. Default 1s.
	Heartbeat time.Duration
	// Logger. Default: discard.
	Logger *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}
}

// Initialize applies defaults, subscribes to this node's kick channel and
// starts publishing this node's sessions.
func (d *Directory) Initialize() error {
	if d.Client == nil || d.Registry == nil {
		return errors.New("session: Directory needs Client and Registry")
	}
	if d.Node == "" {
		host, _ := os.Hostname()
		var b [3]byte
		_, _ = rand.Read(b[:])
		d.Node = host + "-" + hex.EncodeToString(b[:])
	}
	if d.Prefix == "" {
		d.Prefix = "camgate:sessions:"
	}
	if d.Heartbeat <= 0 {
		d.Heartbeat = time.Second
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done, d.wake = cancel, make(chan struct{}), make(chan struct{}, 1)
	ps := d.Client.Subscribe(ctx, d.kickChannel(d.Node))
	if _, err := ps.Receive(ctx); err != nil { // the subscription is live before we announce the node
		cancel()
		_ = ps.Close()
		return fmt.Errorf("session: directory subscribe: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.kicks(ctx, ps) }()
	go func() { defer wg.Done(); d.publishLoop(ctx) }()
	go func() { wg.Wait(); close(d.done) }()
	return nil
}

// Close stops publishing and removes this node's entry.
func (d *Directory) Close() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = d.Client.Del(ctx, d.nodeKey(d.Node)).Err()
	_ = d.Client.ZRem(ctx, d.nodesKey(), d.Node).Err()
}

func (d *Directory) nodesKey() string           { return d.Prefix + "nodes" }
func (d *Directory) nodeKey(node string) string { return d.Prefix + "node:" + node }
func (d *Directory) kickChannel(n string) string {
	return d.Prefix + "kick:" + n
}

// Sync asks for this node's sessions to be written now rather than at the
// next heartbeat.
func (d *Directory) Sync() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Directory) publishLoop(ctx context.Context) {
	t := time.NewTicker(d.Heartbeat)
	defer t.Stop()
	for {
		if err := d.write(ctx); err != nil && ctx.Err() == nil {
			d.Logger.Warn("session directory write", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// write replaces this node's hash with its current sessions.
func (d *Directory) write(ctx context.Context) error {
	list := d.Registry.List()
	vals := make([]any, 0, 2*len(list))
	for _, s := range list {
		s.Node = d.Node
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		vals = append(vals, s.ID, b)
	}
	key := d.nodeKey(d.Node)
	_, err := d.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		if len(vals) > 0 {
			p.HSet(ctx, key, vals...)
		}
		p.PExpire(ctx, key, 3*d.Heartbeat)
		return nil
	})
	if err != nil {
		return err
	}
	return d.Client.ZAdd(ctx, d.nodesKey(), redis.Z{Score: float64(time.Now().UnixMilli()), Member: d.Node}).Err()
}

// kicks ends sessions other nodes asked this node to end.
func (d *Directory) kicks(ctx context.Context, ps *redis.PubSub) {
	defer ps.Close()
	ch := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			id, reason, _ := strings.Cut(m.Payload, "\n")
			if d.Registry.Kick(id, reason) {
				d.Sync()
			}
		}
	}
}

// liveNodes returns the nodes whose heartbeat is recent, other than this one.
func (d *Directory) liveNodes(ctx context.Context) ([]string, error) {
	since := time.Now().Add(-3 * d.Heartbeat).UnixMilli()
	nodes, err := d.Client.ZRangeByScore(ctx, d.nodesKey(), &redis.ZRangeBy{Min: strconv.FormatInt(since, 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	out := nodes[:0]
	for _, n := range nodes {
		if n != d.Node {
			out = append(out, n)
		}
	}
	return out, nil
}

// List returns the sessions of every node, this node's first-hand. When
// Redis cannot be read, only this node's sessions are listed.
func (d *Directory) List() []Session {
	out := d.Registry.List()
	for i := range out {
		out[i].Node = d.Node
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	nodes, err := d.liveNodes(ctx)
	if err != nil {
		d.Logger.Warn("session directory list", "error", err)
		return out
	}
	for _, n := range nodes {
		m, err := d.Client.HGetAll(ctx, d.nodeKey(n)).Result()
		if err != nil {
			d.Logger.Warn("session directory list", "node", n, "error", err)
			continue
		}
		for _, v := range m {
			var s Session
			if json.Unmarshal([]byte(v), &s) == nil {
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// Get returns a session of any node.
func (d *Directory) Get(id string) (Session, bool) {
	if s, ok := d.Registry.Get(id); ok {
		s.Node = d.Node
		return s, true
	}
	_, s, ok := d.find(id)
	return s, ok
}

// find looks a session up on the other nodes.
func (d *Directory) find(id string) (string, Session, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	nodes, err := d.liveNodes(ctx)
	if err != nil {
		d.Logger.Warn("session directory lookup", "error", err)
		return "", Session{}, false
	}
	for _, n := range nodes {
		v, err := d.Client.HGet(ctx, d.nodeKey(n), id).Result()
		if err != nil {
			continue
		}
		var s Session
		if json.Unmarshal([]byte(v), &s) == nil {
			return n, s, true
		}
	}
	return "", Session{}, false
}

// Kick ends a session of any node: here directly, elsewhere through the
// owning node's channel. It reports whether the session was found and its
// node told.
func (d *Directory) Kick(id, reason string) bool {
	if d.Registry.Kick(id, reason) {
		d.Sync()
		return true
	}
	node, _, ok := d.find(id)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// The node is live (it heartbeats) and subscribed to its channel. The
	// count PUBLISH answers is not the proof: on a Redis Cluster it counts
	// only the subscribers of the server that took the message, and the
	// others get it over the cluster bus.
	if err := d.Client.Publish(ctx, d.kickChannel(node), id+"\n"+reason).Err(); err != nil {
		d.Logger.Warn("session directory kick", "node", node, "session", id, "error", err)
		return false
	}
	return true
}
