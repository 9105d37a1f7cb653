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

const testTTL = 600 * time.Millisecond

// events records a node's OnAcquire and OnLose calls.
type events struct {
	mu       sync.Mutex
	acquired map[string]Lease
	lost     map[string]int
}

func startNode(t *testing.T, c redis.UniversalClient, id string) (*Node, *events) {
	t.Helper()
	return startNodeWith(t, c, id, nil)
}

// startNodeWith is startNode with set changing the node before Initialize
// (it may wrap the callbacks startNode sets).
func startNodeWith(t *testing.T, c redis.UniversalClient, id string, set func(*Node)) (*Node, *events) {
	t.Helper()
	ev := &events{acquired: map[string]Lease{}, lost: map[string]int{}}
	n := &Node{Client: c, ID: id, Addr: id + ":8554", TTL: testTTL,
		OnAcquire: func(cam string, l Lease) { ev.mu.Lock(); ev.acquired[cam] = l; ev.mu.Unlock() },
		OnLose:    func(cam string) { ev.mu.Lock(); ev.lost[cam]++; ev.mu.Unlock() },
	}
	if set != nil {
		set(n)
	}
	if err := n.Initialize(); err != nil {
		t.Fatal(err)
	}
	return n, ev
}

// crash stops a node's loop without releasing anything, as a killed
// process would; its membership and leases expire by themselves.
func (n *Node) crash() {
	n.cancel()
	<-n.done
}

func cameras(k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("cam%02d", i)
	}
	return out
}

// owners maps each camera to the nodes that believe they own it.
func owners(nodes []*Node, cams []string) map[string][]string {
	out := map[string][]string{}
	for _, cam := range cams {
		for _, n := range nodes {
			if _, ok := n.Owns(cam); ok {
				out[cam] = append(out[cam], n.ID)
			}
		}
	}
	return out
}

func allOwnedOnce(nodes []*Node, cams []string) bool {
	o := owners(nodes, cams)
	for _, cam := range cams {
		if len(o[cam]) != 1 {
			return false
		}
	}
	return true
}

// Three nodes that all need thirty cameras: each camera gets exactly one
// owner, Redis agrees with it, and the cameras are spread over the nodes.
func TestEachCameraHasOneOwner(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	cams := cameras(30)
	var nodes []*Node
	for _, id := range []string{"a", "b", "c"} {
		n, _ := startNode(t, r.Client(), id)
		defer n.Close()
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		for _, cam := range cams {
			n.Want(cam)
		}
	}
	poll.Until(t, "every camera to have exactly one owner", func() bool { return allOwnedOnce(nodes, cams) })
	per := map[string]int{}
	for cam, ids := range owners(nodes, cams) {
		l, ok, err := nodes[0].Owner(t.Context(), cam)
		if err != nil || !ok || l.Node != ids[0] || l.Addr != ids[0]+":8554" || l.Fence == 0 {
			t.Fatalf("Redis says %s is owned by %+v (%v %v); the nodes say %v", cam, l, ok, err, ids)
		}
		per[ids[0]]++
	}
	for _, n := range nodes {
		if per[n.ID] < 4 {
			t.Fatalf("cameras per node %v: placement does not spread them", per)
		}
	}
	members, err := nodes[0].Members(t.Context())
	if err != nil || len(members) != 3 {
		t.Fatalf("members %+v %v", members, err)
	}
}

// A killed owner's cameras move to the other nodes within about TTL plus
// TTL/2, with higher fences; when it comes back it takes none of them
// (they changed owner less than Cooldown ago, and so did the others).
func TestOwnerDiesItsCamerasMove(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	cams := cameras(12)
	a, _ := startNode(t, r.Client(), "a")
	defer a.Close()
	b, _ := startNode(t, r.Client(), "b")
	c, _ := startNode(t, r.Client(), "c")
	defer c.Close()
	nodes := []*Node{a, b, c}
	for _, n := range nodes {
		for _, cam := range cams {
			n.Want(cam)
		}
	}
	poll.Until(t, "every camera to have one owner", func() bool { return allOwnedOnce(nodes, cams) })
	before := map[string]Lease{}
	var moved []string
	for _, cam := range cams {
		if l, ok := b.Owns(cam); ok {
			before[cam] = l
			moved = append(moved, cam)
		}
	}
	if len(moved) == 0 {
		t.Fatal("b owns nothing to move")
	}
	killed := time.Now()
	b.crash()
	alive := []*Node{a, c}
	poll.Until(t, "b's cameras to move to a and c", func() bool { return allOwnedOnce(alive, cams) })
	took := time.Since(killed)
	t.Logf("%d cameras of the killed owner moved in %v (TTL %v)", len(moved), took, testTTL)
	if took > 3*testTTL {
		t.Fatalf("b's cameras moved after %v; want within about 1.5 × TTL (%v)", took, testTTL)
	}
	for _, cam := range moved {
		l, _, _ := a.Owner(t.Context(), cam)
		if l.Node == "b" || l.Fence <= before[cam].Fence {
			t.Fatalf("%s after the failover: %+v, before %+v", cam, l, before[cam])
		}
	}
	// b comes back under the same id: it owns nothing others hold.
	b2, ev := startNode(t, r.Client(), "b")
	defer b2.Close()
	for _, cam := range cams {
		b2.Want(cam)
	}
	start := b2.rounds.Load()
	poll.Until(t, "the returning node to run a few placement rounds", func() bool { return b2.rounds.Load() >= start+4 })
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if len(ev.acquired) != 0 || !allOwnedOnce([]*Node{a, b2, c}, cams) {
		t.Fatalf("the returning node took %v", ev.acquired)
	}
}

// Unwant releases at once, and a node that still needs the camera takes it.
func TestUnwantHandsTheCameraOver(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	a, evA := startNode(t, r.Client(), "a")
	defer a.Close()
	a.Want("cam1")
	poll.Until(t, "a to own cam1", func() bool { _, ok := a.Owns("cam1"); return ok })
	b, _ := startNode(t, r.Client(), "b")
	defer b.Close()
	b.Want("cam1")
	a.Unwant("cam1")
	evA.mu.Lock()
	lost := evA.lost["cam1"]
	evA.mu.Unlock()
	if _, ok := a.Owns("cam1"); ok || lost != 1 {
		t.Fatalf("a still owns cam1 after Unwant (lost calls %d)", lost)
	}
	poll.Until(t, "b to take cam1", func() bool { _, ok := b.Owns("cam1"); return ok })
}

// An owner cut off from Redis gives its cameras up once it cannot renew
// for TTL, and owns them again when Redis is back.
func TestOwnerWithoutRedisGivesUp(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	a, ev := startNode(t, r.Client(), "a")
	defer a.Close()
	a.Want("cam1")
	poll.Until(t, "a to own cam1", func() bool { _, ok := a.Owns("cam1"); return ok })
	r.Kill()
	poll.Until(t, "a to give cam1 up without Redis", func() bool {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		return ev.lost["cam1"] == 1
	})
	if _, ok := a.Owns("cam1"); ok {
		t.Fatal("Owns still says yes after the lease was given up")
	}
	r.Restart()
	poll.Until(t, "a to own cam1 again", func() bool { _, ok := a.Owns("cam1"); return ok })
}

// Weighted rendezvous: every node computes the same preferred owner, and a
// node that owns many cameras is preferred for fewer new ones.
func TestPreferredIsStableAndWeighted(t *testing.T) {
	m := []Member{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	rev := []Member{m[2], m[1], m[0]}
	count := map[string]int{}
	for _, cam := range cameras(300) {
		p := Preferred(cam, m)
		if p != Preferred(cam, rev) {
			t.Fatalf("the member order changes %s's owner", cam)
		}
		count[p]++
	}
	for _, id := range []string{"a", "b", "c"} {
		if count[id] < 70 {
			t.Fatalf("unweighted spread %v", count)
		}
	}
	loaded := []Member{{ID: "a", Owned: 50}, {ID: "b"}, {ID: "c"}}
	got := 0
	for _, cam := range cameras(300) {
		if Preferred(cam, loaded) == "a" {
			got++
		}
	}
	if got >= count["a"]/5 {
		t.Fatalf("a owning 50 cameras is still preferred for %d of 300 (unloaded: %d)", got, count["a"])
	}
	if Preferred("cam1", nil) != "" {
		t.Fatal("a preferred owner without members")
	}
}
