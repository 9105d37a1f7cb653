// Package cluster places cameras on the nodes of a camgate cluster: each
// node announces itself in Redis with a heartbeat, and each camera that some
// node needs (watched, or recorded) gets exactly one owning node at a time,
// through a lease with a fencing token. Placement is weighted rendezvous
// hashing over the live nodes: every node computes the same preferred owner
// for a camera, and a node's weight falls as the number of cameras it owns
// grows, so one node does not take everything.
//
// The lease is the only thing nodes agree on. The owner pulls the camera and
// records it; the others serve their viewers from the owner (the relay is
// the gateway's, not this package's). An owner that stops renewing (it died,
// or lost Redis) loses its lease after TTL; another node that needs the
// camera takes it over, with a higher fence. A node also gives a camera up
// on its own once it cannot renew for TTL; it notices at its next round, so
// a cut-off owner and its successor may both hold the camera for up to
// TTL/3 (plus clock skew). That overlap is chosen over a gap: both record,
// and playback merges their segments.
//
// A node that joins (or comes back) first takes cameras nobody owns; it
// then takes its share of the others by make-before-break moves
// (handoff.go): it marks its intent in Redis, pulls the camera itself, says
// when it is playing, and only then does the old owner hand the lease over
// (with a higher fence) and let the camera go. Moves are bounded (one at a
// time into a node) and damped (only while the owner has at least Imbalance
// cameras more than the node, never for a camera that changed owner less
// than Cooldown ago), so a returning node does not fight for its cameras.
package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is a camera's current owner.
type Lease struct {
	Node  string `json:"node"`
	Addr  string `json:"addr"`  // where peers reach the owner (its RTSP address)
	Fence uint64 `json:"fence"` // grows with every new owner of any camera
	Since int64  `json:"since"` // Unix ms the lease was taken
}

// Member is a live node.
type Member struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	Owned  int    `json:"owned"` // cameras it owns: its placement load
	Joined int64  `json:"joined"`
	HTTP   string `json:"http,omitempty"` // base URL of its HTTP front, for the archive's peer reads
}

// Node is this process's part in the cluster. Fields are set before
// Initialize and not changed after.
type Node struct {
	// Client is the shared Redis connection (required; not closed here).
	Client redis.UniversalClient
	// Prefix of every key. Default "{camgate:cluster}:": one hash tag, so
	// the multi-key scripts work on a Redis Cluster.
	Prefix string
	// ID names this node (required, unique in the cluster).
	ID string
	// Addr is where peers reach this node (required).
	Addr string
	// HTTP is the base URL of this node's HTTP front as peers reach it
	// ("http://10.0.0.21:8080"), announced in its heartbeat. Optional.
	HTTP string
	// TTL of the heartbeat and of leases. Default 5s. The node heartbeats
	// and renews every TTL/3; a dead owner's cameras move after at most
	// about TTL plus TTL/2.
	TTL time.Duration
	// OnAcquire is called when this node becomes a camera's owner, OnLose
	// when it stops being it (released, expired, or taken after a Redis
	// outage). They run on the node's goroutine and must not block.
	// OnLose is also called when a move into this node (OnPrepare) is
	// given up.
	OnAcquire func(camera string, l Lease)
	OnLose    func(camera string)
	// OnPrepare is called when this node starts moving camera to itself
	// (handoff.go): it must start pulling the camera itself and call Ready
	// once it plays. OnMove is called when the owner of a camera this node
	// follows (Follow) changes to another node. Both run on the node's
	// goroutine and must not block.
	OnPrepare func(camera string)
	OnMove    func(camera string, l Lease)
	// Imbalance: a camera moves to this node only while its owner has at
	// least this many cameras more than this node. Default (and minimum) 2,
	// so that a move never reverses the imbalance and cameras do not
	// bounce between nodes.
	Imbalance int
	// Cooldown: a camera that changed owner less than this ago does not
	// move (nor is a move given up retried sooner). Default 10 × TTL.
	Cooldown time.Duration
	// HandoffTimeout bounds a move: a node that is not playing the camera,
	// or whose handoff the owner has not taken, after this long gives the
	// move up. Default 10 s, at least 3 × TTL.
	HandoffTimeout time.Duration
	// NoRebalance: this node takes only cameras nobody owns.
	NoRebalance bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	mu        sync.Mutex
	wanted    map[string]time.Time // camera → when it was first seen without an owner (zero: has one)
	held      map[string]held      // cameras this node owns
	moving    map[string]*handoff  // cameras this node is moving to itself (handoff.go)
	gaveUp    map[string]time.Time // camera → when a move into this node was given up
	followed  map[string]uint64    // camera → fence of the owner this node's stream pulls from
	published int                  // the load in the last heartbeat
	joined    int64

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	rounds atomic.Int64 // loop iterations, for tests
}

// held is a lease this node owns: its raw value in Redis and until when it
// is sure of it (the last successful renewal plus TTL, less a margin).
type held struct {
	lease Lease
	raw   string
	until time.Time
}

// Initialize validates the fields, announces the node and starts its loop.
func (n *Node) Initialize() error {
	if n.Client == nil || n.ID == "" || n.Addr == "" {
		return errors.New("cluster: Client, ID and Addr are required")
	}
	if n.Prefix == "" {
		n.Prefix = "{camgate:cluster}:"
	}
	if n.TTL <= 0 {
		n.TTL = 5 * time.Second
	}
	if n.Logger == nil {
		n.Logger = slog.Default()
	}
	n.Imbalance = max(n.Imbalance, 2)
	if n.Cooldown <= 0 {
		n.Cooldown = 10 * n.TTL
	}
	if n.HandoffTimeout <= 0 {
		n.HandoffTimeout = 10 * time.Second
	}
	n.HandoffTimeout = max(n.HandoffTimeout, 3*n.TTL)
	n.wanted, n.held = map[string]time.Time{}, map[string]held{}
	n.moving, n.gaveUp, n.followed = map[string]*handoff{}, map[string]time.Time{}, map[string]uint64{}
	n.joined = time.Now().UnixMilli()
	n.kick = make(chan struct{}, 1)
	n.done = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if err := n.heartbeat(ctx); err != nil {
		cancel()
		return fmt.Errorf("cluster: announce node %s: %w", n.ID, err)
	}
	go n.run(ctx)
	return nil
}

// Close stops the loop, releases this node's leases (so their cameras move
// at once rather than after TTL) and leaves the member list.
func (n *Node) Close() {
	n.cancel()
	<-n.done
	ctx, cancel := context.WithTimeout(context.Background(), n.TTL)
	defer cancel()
	n.mu.Lock()
	leases, moves := n.held, n.moving
	n.held, n.moving = map[string]held{}, map[string]*handoff{}
	n.mu.Unlock()
	for cam, h := range moves {
		_ = releaseScript.Run(ctx, n.Client, []string{n.handoffKey(cam)}, h.raw).Err()
		n.lost(cam)
	}
	for cam, h := range leases {
		if err := releaseScript.Run(ctx, n.Client, []string{n.ownerKey(cam)}, h.raw).Err(); err != nil {
			n.Logger.Warn("cluster: releasing a camera on close", "camera", cam, "error", err)
		}
		n.lost(cam)
	}
	n.Client.ZRem(ctx, n.Prefix+"nodes", n.ID)
	n.Client.Del(ctx, n.Prefix+"node:"+n.ID)
}

// Want says this node needs camera (a viewer watches it, or it records):
// the node takes part in placing it and may become its owner.
func (n *Node) Want(camera string) {
	n.mu.Lock()
	_, ok := n.wanted[camera]
	if !ok {
		n.wanted[camera] = time.Time{}
	}
	n.mu.Unlock()
	if !ok {
		n.wake()
	}
}

// Unwant says this node no longer needs camera; if it owns it, it releases
// the lease.
func (n *Node) Unwant(camera string) {
	n.mu.Lock()
	delete(n.wanted, camera)
	delete(n.followed, camera)
	h, owned := n.held[camera]
	delete(n.held, camera)
	mv := n.moving[camera]
	delete(n.moving, camera)
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), n.TTL)
	defer cancel()
	if mv != nil {
		_ = releaseScript.Run(ctx, n.Client, []string{n.handoffKey(camera)}, mv.raw).Err()
		n.lost(camera)
	}
	if owned {
		if err := releaseScript.Run(ctx, n.Client, []string{n.ownerKey(camera)}, h.raw).Err(); err != nil {
			n.Logger.Warn("cluster: releasing a camera", "camera", camera, "error", err)
		}
		n.lost(camera)
	}
}

// Owns reports whether this node owns camera now, with its lease.
func (n *Node) Owns(camera string) (Lease, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.held[camera]
	if !ok || time.Now().After(h.until) {
		return Lease{}, false
	}
	return h.lease, true
}

// Owned is how many cameras this node owns now.
func (n *Node) Owned() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.held)
}

// Owner reads camera's lease from Redis: who owns it now, if anyone.
func (n *Node) Owner(ctx context.Context, camera string) (Lease, bool, error) {
	raw, err := n.Client.Get(ctx, n.ownerKey(camera)).Result()
	if errors.Is(err, redis.Nil) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("cluster: owner of %s: %w", camera, err)
	}
	var l Lease
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		return Lease{}, false, fmt.Errorf("cluster: owner of %s: unreadable lease: %w", camera, err)
	}
	return l, true, nil
}

// Owners reads the leases of many cameras in one round trip; cameras
// nobody owns are absent from the answer.
func (n *Node) Owners(ctx context.Context, cameras []string) (map[string]Lease, error) {
	raws, err := n.leases(ctx, cameras)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Lease, len(raws))
	for cam, h := range raws {
		out[cam] = h.lease
	}
	return out, nil
}

// leases reads the leases of cameras, with their raw values, in one MGET.
func (n *Node) leases(ctx context.Context, cameras []string) (map[string]held, error) {
	out := map[string]held{}
	if len(cameras) == 0 {
		return out, nil
	}
	keys := make([]string, len(cameras))
	for i, cam := range cameras {
		keys[i] = n.ownerKey(cam)
	}
	vals, err := n.Client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: owners: %w", err)
	}
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		var l Lease
		if json.Unmarshal([]byte(raw), &l) == nil {
			out[cameras[i]] = held{lease: l, raw: raw}
		}
	}
	return out, nil
}

// Members lists the live nodes, sorted by id.
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	ids, err := n.Client.ZRangeByScore(ctx, n.Prefix+"nodes", &redis.ZRangeBy{Min: now, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: members: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = n.Prefix + "node:" + id
	}
	vals, err := n.Client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: members: %w", err)
	}
	out := make([]Member, 0, len(vals))
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // expired between the two reads
		}
		var m Member
		if json.Unmarshal([]byte(s), &m) == nil && m.ID != "" {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Member reads one live node's heartbeat; false when it is not running
// (its heartbeat expired, or it left).
func (n *Node) Member(ctx context.Context, id string) (Member, bool, error) {
	raw, err := n.Client.Get(ctx, n.Prefix+"node:"+id).Result()
	if errors.Is(err, redis.Nil) {
		return Member{}, false, nil
	}
	if err != nil {
		return Member{}, false, fmt.Errorf("cluster: node %s: %w", id, err)
	}
	var m Member
	if err := json.Unmarshal([]byte(raw), &m); err != nil || m.ID != id {
		return Member{}, false, fmt.Errorf("cluster: node %s: unreadable heartbeat", id)
	}
	return m, true, nil
}

func (n *Node) ownerKey(camera string) string   { return n.Prefix + "owner:" + camera }
func (n *Node) handoffKey(camera string) string { return n.Prefix + "handoff:" + camera }

func (n *Node) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	t := time.NewTicker(n.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.heartbeat(ctx); err != nil && ctx.Err() == nil {
				n.Logger.Warn("cluster: heartbeat", "node", n.ID, "error", err)
			}
			n.renew(ctx)
		case <-n.kick:
		}
		n.place(ctx)
		n.mu.Lock()
		changed := n.published != len(n.held)+len(n.moving)
		n.mu.Unlock()
		if changed { // the others place by this load: tell them now, not a tick later
			_ = n.heartbeat(ctx)
		}
		n.rounds.Add(1)
	}
}

// heartbeat announces the node (and its load: the cameras it owns or is
// moving to itself) for TTL.
func (n *Node) heartbeat(ctx context.Context) error {
	n.mu.Lock()
	m := Member{ID: n.ID, Addr: n.Addr, Owned: len(n.held) + len(n.moving), Joined: n.joined, HTTP: n.HTTP}
	n.published = m.Owned
	n.mu.Unlock()
	b, _ := json.Marshal(m)
	now := time.Now()
	_, err := n.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, n.Prefix+"node:"+n.ID, b, n.TTL)
		p.ZAdd(ctx, n.Prefix+"nodes", redis.Z{Score: float64(now.Add(n.TTL).UnixMilli()), Member: n.ID})
		p.ZRemRangeByScore(ctx, n.Prefix+"nodes", "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		p.PExpire(ctx, n.Prefix+"nodes", 24*time.Hour)
		return nil
	})
	return err
}

// renew extends every lease this node holds; one it cannot renew past its
// certainty is given up (another node may have it by now).
func (n *Node) renew(ctx context.Context) {
	n.mu.Lock()
	cams := make([]string, 0, len(n.held))
	for cam := range n.held {
		cams = append(cams, cam)
	}
	n.mu.Unlock()
	for _, cam := range cams {
		n.mu.Lock()
		h, ok := n.held[cam]
		n.mu.Unlock()
		if !ok {
			continue
		}
		start := time.Now()
		res, err := renewOwnedScript.Run(ctx, n.Client, []string{n.ownerKey(cam), n.handoffKey(cam)}, h.raw, n.TTL.Milliseconds()).Int()
		switch {
		case err == nil && res == 2: // renewed, and a node that plays the camera waits to take it
			n.mu.Lock()
			if cur, still := n.held[cam]; still && cur.raw == h.raw {
				cur.until = start.Add(n.TTL - n.TTL/5)
				n.held[cam] = cur
			}
			n.mu.Unlock()
			n.handOver(ctx, cam, h.raw)
		case err == nil && res == 1:
			n.mu.Lock()
			if cur, still := n.held[cam]; still && cur.raw == h.raw {
				cur.until = start.Add(n.TTL - n.TTL/5)
				n.held[cam] = cur
			}
			n.mu.Unlock()
		case err == nil:
			n.Logger.Warn("cluster: lost a camera's lease to another node", "camera", cam, "node", n.ID)
			n.drop(cam, h.raw)
		case time.Now().After(h.until):
			n.Logger.Warn("cluster: giving a camera up, its lease could not be renewed", "camera", cam, "node", n.ID, "error", err)
			n.drop(cam, h.raw)
		}
	}
}

func (n *Node) drop(camera, raw string) {
	n.mu.Lock()
	cur, ok := n.held[camera]
	if ok && cur.raw == raw {
		delete(n.held, camera)
	}
	n.mu.Unlock()
	if ok && cur.raw == raw {
		n.lost(camera)
	}
}

func (n *Node) lost(camera string) {
	if n.OnLose != nil {
		n.OnLose(camera)
	}
}

// place reads the owners of the wanted cameras this node does not own (one
// MGET) and acts on each: takes one nobody owns (at once when this node is
// the preferred owner among the live members or is moving it here, after
// TTL/2 without an owner otherwise: the preferred node may not want it),
// follows a move of a camera it pulls from another node, and carries its
// own moves on; then it may start one move (rebalance).
func (n *Node) place(ctx context.Context) {
	n.mu.Lock()
	var others []string
	for cam := range n.wanted {
		if _, ok := n.held[cam]; !ok {
			others = append(others, cam)
		}
	}
	n.mu.Unlock()
	if len(others) == 0 {
		return
	}
	slices.Sort(others)
	members, err := n.Members(ctx)
	if err == nil {
		var leases map[string]held
		if leases, err = n.leases(ctx, others); err == nil {
			n.placeAll(ctx, others, members, leases)
			n.rebalance(ctx, others, members, leases)
			return
		}
	}
	n.Logger.Warn("cluster: placing cameras", "node", n.ID, "error", err)
}

func (n *Node) placeAll(ctx context.Context, others []string, members []Member, leases map[string]held) {
	now := time.Now()
	for _, cam := range others {
		cur, owned := leases[cam]
		n.mu.Lock()
		since, still := n.wanted[cam]
		mv := n.moving[cam]
		fence, follows := n.followed[cam]
		var move bool
		switch {
		case !still:
		case owned:
			n.wanted[cam] = time.Time{}
			if follows && fence != cur.lease.Fence && cur.lease.Node != n.ID && mv == nil {
				n.followed[cam] = cur.lease.Fence
				move = true
			}
		case since.IsZero():
			since = now
			n.wanted[cam] = now
		}
		n.mu.Unlock()
		switch {
		case !still:
		case mv != nil:
			n.carryMove(ctx, cam, mv, cur, owned)
		case owned:
			if move && n.OnMove != nil {
				n.OnMove(cam, cur.lease)
			}
		case Preferred(cam, members) == n.ID || now.Sub(since) >= n.TTL/2:
			n.acquire(ctx, cam)
		}
	}
}

// acquire takes camera's lease if it is free.
func (n *Node) acquire(ctx context.Context, camera string) {
	l := Lease{Node: n.ID, Addr: n.Addr, Since: time.Now().UnixMilli()}
	start := time.Now()
	raw, err := acquireScript.Run(ctx, n.Client, []string{n.ownerKey(camera), n.Prefix + "fence"},
		n.ID, n.Addr, l.Since, n.TTL.Milliseconds()).Text()
	if err != nil {
		n.Logger.Warn("cluster: taking a camera's lease", "camera", camera, "node", n.ID, "error", err)
		return
	}
	if err := json.Unmarshal([]byte(raw), &l); err != nil || l.Node != n.ID {
		return // someone else has it
	}
	n.take(ctx, camera, l, raw, start)
}

// take records a lease this node got (renewed or set at start) and tells
// OnAcquire; a move of the camera into this node is over.
func (n *Node) take(ctx context.Context, camera string, l Lease, raw string, start time.Time) {
	n.mu.Lock()
	_, still := n.wanted[camera]
	if still {
		n.held[camera] = held{lease: l, raw: raw, until: start.Add(n.TTL - n.TTL/5)}
	}
	mv := n.moving[camera]
	delete(n.moving, camera)
	n.mu.Unlock()
	if mv != nil {
		_ = releaseScript.Run(ctx, n.Client, []string{n.handoffKey(camera)}, mv.raw).Err()
	}
	if !still { // unwanted meanwhile: give it back
		_ = releaseScript.Run(ctx, n.Client, []string{n.ownerKey(camera)}, raw).Err()
		return
	}
	n.Logger.Info("cluster: owning a camera", "camera", camera, "node", n.ID, "fence", l.Fence, "moved", mv != nil)
	if n.OnAcquire != nil {
		n.OnAcquire(camera, l)
	}
}

// Preferred is the member that should own camera: weighted rendezvous
// hashing, each member weighted 1/(1+cameras it owns). "" without members.
func Preferred(camera string, members []Member) string {
	best, bestScore := "", math.Inf(-1)
	for _, m := range members {
		h := fnv.New64a()
		h.Write([]byte(camera))
		h.Write([]byte{0})
		h.Write([]byte(m.ID))
		// A uniform value in (0, 1) from the hash, then the weighted
		// rendezvous score -w/ln(u): highest wins.
		u := (float64(h.Sum64()>>11) + 0.5) / float64(1<<53)
		score := -(1 / float64(1+m.Owned)) / math.Log(u)
		if score > bestScore || (score == bestScore && m.ID < best) {
			best, bestScore = m.ID, score
		}
	}
	return best
}

// acquireScript: KEYS owner, fence counter; ARGV node, addr, since ms, TTL
// ms. Returns the lease in force: the existing one, or a new one with the
// next fence.
var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
local fence = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 31536000000)
local v = cjson.encode({node = ARGV[1], addr = ARGV[2], fence = fence, since = tonumber(ARGV[3])})
redis.call('SET', KEYS[1], v, 'PX', ARGV[4])
return v
`)

// renewScript: KEYS owner; ARGV the holder's raw lease, TTL ms. 1 when
// renewed, 0 when the lease is someone else's (or gone).
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// releaseScript: KEYS owner; ARGV the holder's raw lease. Deletes it only
// if it is still that one.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
