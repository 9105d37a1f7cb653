package cluster

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
)

// A move of a camera into this node is make-before-break:
//
//  1. this node writes its intent, handoff:{camera} naming the fence of the
//     lease it replaces (SET NX: one move per camera at a time), and starts
//     pulling the camera itself (OnPrepare);
//  2. once it plays (Ready), it marks the handoff ready;
//  3. the owner, at its next renewal, sees a ready handoff for its lease and
//     hands the lease over in one script: if the lease is still its own, a
//     new lease for this node with the next fence replaces it. The owner has
//     stopped saying it owns the camera before the script runs, and lets the
//     camera go (OnLose) after it;
//  4. this node adopts the new lease at its next round (OnAcquire).
//
// Between 3 and 4, at most a round (TTL/3), no node says it owns the camera,
// but both pull it: the camera sees two readers for a moment, never none. A
// move that does not complete within HandoffTimeout (the camera does not
// play here, the owner is gone or someone else took the camera) is given
// up, and not tried again for that camera before Cooldown.

// handoff is a move into this node (guarded by Node.mu).
type handoff struct {
	raw     string // the handoff key's value
	from    uint64 // fence of the lease it replaces
	started time.Time
	ready   bool // Ready was called
	marked  bool // the key says ready
}

type handoffValue struct {
	Node  string `json:"node"`
	Addr  string `json:"addr"`
	From  uint64 `json:"from"`
	Ready bool   `json:"ready"`
}

// Moving reports whether this node is moving camera to itself: it should
// pull the camera itself, not from the owner.
func (n *Node) Moving(camera string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.moving[camera] != nil
}

// Ready says this node plays camera, which it is moving to itself: the
// owner may let it go. It does nothing for a camera not being moved here.
func (n *Node) Ready(camera string) {
	n.mu.Lock()
	mv := n.moving[camera]
	if mv != nil {
		mv.ready = true
	}
	n.mu.Unlock()
	if mv != nil {
		n.wake()
	}
}

// Follow says this node's stream of camera pulls from l's node: OnMove is
// called once when the camera's owner is another one.
func (n *Node) Follow(camera string, l Lease) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.wanted[camera]; ok {
		n.followed[camera] = l.Fence
	}
}

// rebalance starts at most one move into this node, and none while one is
// under way: of a camera this node wants whose owner is a live node with at
// least Imbalance cameras more than this one, which has had its owner for
// Cooldown, and for which this node is the preferred owner among the nodes
// a move from that owner would be worth it for.
func (n *Node) rebalance(ctx context.Context, others []string, members []Member, leases map[string]held) {
	if n.NoRebalance {
		return
	}
	n.mu.Lock()
	busy, mine := len(n.moving) > 0, len(n.held)+len(n.moving)
	n.mu.Unlock()
	if busy {
		return
	}
	load := make(map[string]int, len(members))
	for _, m := range members {
		load[m.ID] = m.Owned
	}
	if _, in := load[n.ID]; !in {
		return // not announced: the others do not count this node either
	}
	load[n.ID] = mine
	now := time.Now()
	for _, cam := range others {
		cur, ok := leases[cam]
		if !ok || cur.lease.Node == n.ID {
			continue
		}
		from, live := load[cur.lease.Node]
		if !live || from < mine+n.Imbalance || now.Sub(time.UnixMilli(cur.lease.Since)) < n.Cooldown {
			continue
		}
		n.mu.Lock()
		gave, recent := n.gaveUp[cam]
		if recent && now.Sub(gave) >= n.Cooldown {
			delete(n.gaveUp, cam)
			recent = false
		}
		n.mu.Unlock()
		if recent {
			continue
		}
		var to []Member
		for _, m := range members {
			if m.ID != cur.lease.Node && load[m.ID] <= from-n.Imbalance {
				to = append(to, Member{ID: m.ID, Owned: load[m.ID]})
			}
		}
		if Preferred(cam, to) == n.ID && n.startMove(ctx, cam, cur.lease) {
			return
		}
	}
}

// startMove writes the intent to move camera here and asks the gateway to
// pull it (OnPrepare); false when another node is moving it already.
func (n *Node) startMove(ctx context.Context, camera string, from Lease) bool {
	b, _ := json.Marshal(handoffValue{Node: n.ID, Addr: n.Addr, From: from.Fence})
	ok, err := n.Client.SetNX(ctx, n.handoffKey(camera), b, 2*n.TTL).Result()
	if err != nil || !ok {
		return false
	}
	n.mu.Lock()
	_, still := n.wanted[camera]
	if still {
		n.moving[camera] = &handoff{raw: string(b), from: from.Fence, started: time.Now()}
	}
	n.mu.Unlock()
	if !still {
		_ = releaseScript.Run(ctx, n.Client, []string{n.handoffKey(camera)}, string(b)).Err()
		return false
	}
	n.Logger.Info("cluster: moving a camera here", "camera", camera, "node", n.ID, "from", from.Node, "fence", from.Fence)
	if n.OnPrepare != nil {
		n.OnPrepare(camera)
	}
	return true
}

// carryMove takes a move one step on, given the camera's lease now (cur,
// when owned): takes a free camera at once (it plays here already), adopts
// the lease the owner handed over, marks the handoff ready, keeps it
// alive, or gives the move up.
func (n *Node) carryMove(ctx context.Context, camera string, mv *handoff, cur held, owned bool) {
	n.mu.Lock()
	raw, ready, marked, started := mv.raw, mv.ready, mv.marked, mv.started
	n.mu.Unlock()
	switch {
	case !owned:
		n.acquire(ctx, camera)
	case cur.lease.Node == n.ID && cur.lease.Fence > mv.from:
		start := time.Now()
		if res, err := renewScript.Run(ctx, n.Client, []string{n.ownerKey(camera)}, cur.raw, n.TTL.Milliseconds()).Int(); err == nil && res == 1 {
			n.take(ctx, camera, cur.lease, cur.raw, start)
		}
	case cur.lease.Fence != mv.from:
		n.giveUpMove(ctx, camera, mv, "the camera has another owner")
	case time.Since(started) > n.HandoffTimeout:
		n.giveUpMove(ctx, camera, mv, "timed out")
	case ready && !marked:
		var v handoffValue
		_ = json.Unmarshal([]byte(raw), &v)
		v.Ready = true
		b, _ := json.Marshal(v)
		res, err := swapScript.Run(ctx, n.Client, []string{n.handoffKey(camera)}, raw, string(b), (2 * n.TTL).Milliseconds()).Int()
		switch {
		case err == nil && res == 1:
			n.mu.Lock()
			mv.raw, mv.marked = string(b), true
			n.mu.Unlock()
		case err == nil:
			n.giveUpMove(ctx, camera, mv, "its handoff expired")
		}
	default:
		res, err := renewScript.Run(ctx, n.Client, []string{n.handoffKey(camera)}, raw, (2 * n.TTL).Milliseconds()).Int()
		if err == nil && res == 0 {
			n.giveUpMove(ctx, camera, mv, "its handoff expired")
		}
	}
}

func (n *Node) giveUpMove(ctx context.Context, camera string, mv *handoff, why string) {
	n.mu.Lock()
	cur := n.moving[camera]
	if cur == mv {
		delete(n.moving, camera)
		n.gaveUp[camera] = time.Now()
	}
	raw := mv.raw
	n.mu.Unlock()
	if cur != mv {
		return
	}
	_ = releaseScript.Run(ctx, n.Client, []string{n.handoffKey(camera)}, raw).Err()
	n.Logger.Warn("cluster: giving a move up", "camera", camera, "node", n.ID, "reason", why)
	n.lost(camera)
}

// handOver gives camera, which this node owns under raw, to the node whose
// ready handoff waits for it. This node stops saying it owns the camera
// before the lease changes hands, and lets it go (OnLose) after.
func (n *Node) handOver(ctx context.Context, camera, raw string) {
	n.mu.Lock()
	cur, ok := n.held[camera]
	if ok && cur.raw == raw {
		delete(n.held, camera)
	}
	n.mu.Unlock()
	if !ok || cur.raw != raw {
		return
	}
	res, err := transferScript.Run(ctx, n.Client, []string{n.ownerKey(camera), n.handoffKey(camera), n.Prefix + "fence"},
		raw, n.TTL.Milliseconds(), time.Now().UnixMilli()).Slice()
	code := int64(-1)
	if err == nil && len(res) > 0 {
		code, _ = res[0].(int64)
	}
	switch code {
	case 1:
		to := ""
		if len(res) > 1 {
			var l Lease
			if s, _ := res[1].(string); json.Unmarshal([]byte(s), &l) == nil {
				to = l.Node
			}
		}
		n.Logger.Info("cluster: handed a camera over", "camera", camera, "node", n.ID, "to", to)
		n.lost(camera)
	case 0:
		n.Logger.Warn("cluster: lost a camera's lease to another node", "camera", camera, "node", n.ID)
		n.lost(camera)
	default: // not ready after all, or Redis failed: still ours
		n.mu.Lock()
		if _, wanted := n.wanted[camera]; wanted {
			if _, taken := n.held[camera]; !taken {
				n.held[camera] = cur
			}
		}
		n.mu.Unlock()
		if err != nil {
			n.Logger.Warn("cluster: handing a camera over", "camera", camera, "node", n.ID, "error", err)
		}
	}
}

// renewOwnedScript: KEYS owner, handoff; ARGV the holder's raw lease, TTL
// ms. 0 when the lease is someone else's (or gone), 1 when renewed, 2 when
// renewed and a ready handoff waits.
var renewOwnedScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local h = redis.call('GET', KEYS[2])
if h then
  local ok, d = pcall(cjson.decode, h)
  if ok and type(d) == 'table' and d.ready == true then return 2 end
end
return 1
`)

// swapScript: KEYS key; ARGV old value, new value, TTL ms. Sets the new
// value only over the old one: 1, else 0.
var swapScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)

// transferScript: KEYS owner, handoff, fence counter; ARGV the owner's raw
// lease, TTL ms, since ms. {1, new lease} when the lease was handed to the
// ready handoff's node with the next fence; {0} when the lease is not the
// caller's; {2} when no ready handoff for this lease waits.
var transferScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return {0} end
local h = redis.call('GET', KEYS[2])
if not h then return {2} end
local ok, d = pcall(cjson.decode, h)
if not ok or type(d) ~= 'table' or d.ready ~= true or d.from ~= cjson.decode(cur).fence then return {2} end
local fence = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], 31536000000)
local v = cjson.encode({node = d.node, addr = d.addr, fence = fence, since = tonumber(ARGV[3])})
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return {1, v}
`)
