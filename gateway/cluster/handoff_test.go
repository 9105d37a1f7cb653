package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// pulls stands in for the gateway: a node pulls a camera while it owns it
// or moves it to itself (OnPrepare, then Ready at once unless held back),
// and stops on OnLose. It records what must never happen: a camera nobody
// pulls after a node let it go, a node owning a camera another still says
// it owns, a fence that does not grow.
type pulls struct {
	mu         sync.Mutex
	by         map[string]map[string]bool // camera → nodes pulling it
	fence      map[string]uint64          // camera → fence of its last owner
	acquired   map[string][]time.Time     // camera → when each owner took it
	prepared   map[string]int             // node → moves it started
	preparedAt map[string][]time.Time     // camera → when moves of it started
	moved      map[string][]string        // node → OnMove calls it had
	released   map[string]int             // "node/camera" → OnLose calls
	bad        []string
	nodes      []*Node
	noReady    bool
}

func newPulls() *pulls {
	return &pulls{by: map[string]map[string]bool{}, fence: map[string]uint64{}, acquired: map[string][]time.Time{},
		prepared: map[string]int{}, preparedAt: map[string][]time.Time{}, moved: map[string][]string{}, released: map[string]int{}}
}

func (p *pulls) failf(format string, args ...any) {
	p.bad = append(p.bad, fmt.Sprintf(format, args...))
}

func (p *pulls) start(t *testing.T, c redis.UniversalClient, id string, set func(*Node)) *Node {
	t.Helper()
	var n *Node
	n, _ = startNodeWith(t, c, id, func(nn *Node) {
		nn.Cooldown = 2 * testTTL
		nn.OnAcquire = func(cam string, l Lease) {
			var others []string
			p.mu.Lock()
			for _, o := range p.nodes {
				if o != nil && o.ID != id {
					others = append(others, o.ID)
				}
			}
			nodes := append([]*Node(nil), p.nodes...)
			p.mu.Unlock()
			for _, o := range nodes {
				if o != nil && o.ID != id {
					if ol, owns := o.Owns(cam); owns {
						p.mu.Lock()
						p.failf("%s took %s (fence %d) while %s still owns it (fence %d)", id, cam, l.Fence, o.ID, ol.Fence)
						p.mu.Unlock()
					}
				}
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if l.Fence <= p.fence[cam] {
				p.failf("%s took %s with fence %d after fence %d", id, cam, l.Fence, p.fence[cam])
			}
			p.fence[cam] = l.Fence
			p.acquired[cam] = append(p.acquired[cam], time.Now())
			p.pull(cam, id)
		}
		nn.OnLose = func(cam string) {
			p.mu.Lock()
			defer p.mu.Unlock()
			delete(p.by[cam], id)
			p.released[id+"/"+cam]++
			if len(p.by[cam]) == 0 {
				p.failf("nobody pulls %s after %s let it go", cam, id)
			}
		}
		nn.OnPrepare = func(cam string) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.prepared[id]++
			p.preparedAt[cam] = append(p.preparedAt[cam], time.Now())
			p.pull(cam, id)
			if !p.noReady {
				go n.Ready(cam) // "playing" at once; from another goroutine, as the gateway does
			}
		}
		nn.OnMove = func(cam string, l Lease) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.moved[id] = append(p.moved[id], cam+"→"+l.Node)
		}
		if set != nil {
			set(nn)
		}
	})
	p.mu.Lock()
	p.nodes = append(p.nodes, n)
	p.mu.Unlock()
	return n
}

func (p *pulls) pull(cam, id string) {
	if p.by[cam] == nil {
		p.by[cam] = map[string]bool{}
	}
	p.by[cam][id] = true
}

func (p *pulls) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.bad {
		t.Error(b)
	}
}

func ownedBy(nodes []*Node, cams []string) map[string]int {
	per := map[string]int{}
	for cam, ids := range owners(nodes, cams) {
		for _, id := range ids {
			per[id]++
		}
		_ = cam
	}
	return per
}

// Two nodes own six cameras; a third joins and takes its share, two, one
// move at a time, make-before-break: it pulls each camera before the old
// owner lets it go, no camera is owned by two nodes at once and fences only
// grow; a node that pulls a moved camera from its old owner is told
// (OnMove); and then nothing moves any more (hysteresis).
func TestJoinTakesItsShareMakeBeforeBreak(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	cams := cameras(6)
	p := newPulls()
	a := p.start(t, r.Client(), "a", nil)
	defer a.Close()
	b := p.start(t, r.Client(), "b", nil)
	defer b.Close()
	for _, n := range []*Node{a, b} {
		for _, cam := range cams {
			n.Want(cam)
		}
	}
	poll.Until(t, "a and b to own every camera once", func() bool { return allOwnedOnce([]*Node{a, b}, cams) })
	// b follows (pulls from) a's cameras, as its stream would.
	var ofA []string
	for _, cam := range cams {
		if l, ok := a.Owns(cam); ok {
			b.Follow(cam, l)
			ofA = append(ofA, cam)
		}
	}
	before := ownedBy([]*Node{a, b}, cams)
	joined := time.Now()
	c := p.start(t, r.Client(), "c", nil)
	defer c.Close()
	for _, cam := range cams {
		c.Want(cam)
	}
	nodes := []*Node{a, b, c}
	poll.Until(t, "c to take its share (2 of 6)", func() bool {
		per := ownedBy(nodes, cams)
		return allOwnedOnce(nodes, cams) && per["a"] == 2 && per["b"] == 2 && per["c"] == 2
	})
	took := time.Since(joined)
	// A few more rounds of every node: nothing moves any more.
	start := [3]int64{a.rounds.Load(), b.rounds.Load(), c.rounds.Load()}
	poll.Until(t, "every node to run four more rounds", func() bool {
		return a.rounds.Load() >= start[0]+4 && b.rounds.Load() >= start[1]+4 && c.rounds.Load() >= start[2]+4
	})
	p.check(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	moves := p.prepared["a"] + p.prepared["b"] + p.prepared["c"]
	t.Logf("placement %v before the join; c took 2 in %v with %d moves (TTL %v)", before, took, moves, testTTL)
	if want := max(before["a"], before["b"]) - 2; p.prepared["c"] < 2 || moves > 2+want {
		t.Fatalf("moves started %v for a placement of %v: more than needed", p.prepared, before)
	}
	if per := ownedBy(nodes, cams); per["c"] != 2 {
		t.Fatalf("after more rounds, placement %v", per)
	}
	for cam, at := range p.acquired {
		for i := 1; i < len(at); i++ {
			if gap := at[i].Sub(at[i-1]); gap < 2*testTTL {
				t.Fatalf("%s changed owner twice within %v (cool-down %v)", cam, gap, 2*testTTL)
			}
		}
	}
	// b was told of each of a's cameras that moved to c.
	movedFromA := 0
	for _, cam := range ofA {
		if l, ok := c.Owns(cam); ok && l.Node == "c" {
			movedFromA++
		}
	}
	if got := len(p.moved["b"]); got != movedFromA {
		t.Fatalf("b had OnMove %v; %d of the cameras it followed moved", p.moved["b"], movedFromA)
	}
}

// A node that cannot play the camera it is moving gives the move up after
// HandoffTimeout: the owner keeps the camera, and the node does not try
// that camera again within Cooldown.
func TestMoveGivenUpWhenNotPlaying(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	cams := cameras(2)
	p := newPulls()
	p.noReady = true
	a := p.start(t, r.Client(), "a", nil)
	defer a.Close()
	for _, cam := range cams {
		a.Want(cam)
	}
	poll.Until(t, "a to own both cameras", func() bool { return allOwnedOnce([]*Node{a}, cams) })
	c := p.start(t, r.Client(), "c", func(n *Node) { n.HandoffTimeout = 3 * testTTL })
	for _, cam := range cams {
		c.Want(cam)
	}
	poll.Until(t, "c to start a third move (having given up two)", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.prepared["c"] >= 3
	})
	c.Close()
	p.check(t)
	for _, cam := range cams {
		if l, ok := a.Owns(cam); !ok || l.Node != "a" {
			t.Fatalf("a lost %s to a move that never played", cam)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for cam, at := range p.preparedAt {
		for i := 1; i < len(at); i++ {
			if gap := at[i].Sub(at[i-1]); gap < 2*testTTL {
				t.Fatalf("a move of %s was tried again after %v (cool-down %v)", cam, gap, 2*testTTL)
			}
		}
	}
	if len(p.by[cams[0]]) != 1 || len(p.by[cams[1]]) != 1 {
		t.Fatalf("pulls after the given-up moves: %v", p.by)
	}
}

// An owner that dies while a camera moves: the node already pulling it
// takes it as soon as the lease expires, without letting it go first.
func TestOwnerDiesMidMove(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	cams := cameras(2)
	p := newPulls()
	p.noReady = true // the move stays under way until the owner is gone
	a := p.start(t, r.Client(), "a", nil)
	for _, cam := range cams {
		a.Want(cam)
	}
	poll.Until(t, "a to own both cameras", func() bool { return allOwnedOnce([]*Node{a}, cams) })
	c := p.start(t, r.Client(), "c", nil)
	defer c.Close()
	for _, cam := range cams {
		c.Want(cam)
	}
	var moving string
	poll.Until(t, "c to start a move", func() bool {
		for _, cam := range cams {
			if c.Moving(cam) {
				moving = cam
				return true
			}
		}
		return false
	})
	a.crash()
	poll.Until(t, "c to own both cameras", func() bool { return allOwnedOnce([]*Node{c}, cams) })
	p.check(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.released["c/"+moving]; n != 0 {
		t.Fatalf("c let %s go %d times while taking it over", moving, n)
	}
	if c.Moving(moving) {
		t.Fatal("the move is still under way after c took the camera")
	}
}
