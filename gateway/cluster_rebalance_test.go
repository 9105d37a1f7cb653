package gateway

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// Issue 17, rebalancing on join: two nodes own six recorded cameras (three
// each, the second having taken its share of the first's), each watched on
// both; a third node joins and takes two, make-before-break.
// The camera of a moved camera never has 0 readers (and has one again
// after the move), the viewers on the first two nodes keep their sessions
// and their video, the fences grow, and the recording has no gap: the new
// owner's first segment starts before the old owner's last one ends.
func TestClusterRebalancesOnJoin(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	const k = 6
	ups := make([]*mediatest.Upstream, k)
	var cams []config.Camera
	for i := range ups {
		ups[i] = mediatest.StartUpstream(t)
		mediatest.Publish(t, ups[i], mediatest.Clip{Name: "h264", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p"}, Ext: "mkv"})
		cams = append(cams, config.Camera{ID: fmt.Sprintf("cam%d", i+1), Site: "hq", Source: ups[i].URL(), Record: true})
	}
	start := func(id string) *node {
		return startNodeWith(t, t.TempDir(), func(c *config.Config) {
			c.Redis.URL = r.URL
			c.Cluster = config.Cluster{Enabled: true, NodeID: id, Secret: testClusterSecret, LeaseTTL: config.Duration(time.Second)}
			c.Cameras = cams
			c.Archive.SegmentDuration = config.Duration(time.Second)
		})
	}
	na, nb := start("na"), start("nb")
	mustCall(t, na, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	for _, c := range cams {
		mustCall(t, na, "PUT", "/grants/g-"+c.ID, `{"subject":"alice","device":"`+c.ID+`","actions":["live"]}`, 200)
	}
	tok := viewerToken(t, "alice")
	viewers := []*node{na, nb}
	packets := make([][]*atomic.Int64, len(viewers))
	for i, n := range viewers {
		for _, c := range cams {
			poll.Until(t, "alice's grant on "+c.ID+" to reach "+n.g.Config.Cluster.NodeID, func() bool {
				code, out := n.call(t, "GET", "/check?subject=alice&device="+c.ID+"&action=live", "")
				return code == 200 && out["allowed"] == true
			})
			p := &atomic.Int64{}
			cl, err := dialRTSP(t, n.rtsp+"/"+c.ID+"?token="+tok, p)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			packets[i] = append(packets[i], p)
		}
	}
	all := []*node{na, nb}
	ownerOf := func(nodes []*node, cam string) (int, uint64) {
		at, fence := -1, uint64(0)
		for i, n := range nodes {
			if l, ok := n.g.cluster.Load().Owns(cam); ok {
				if at >= 0 {
					t.Fatalf("%s is owned by %d and %d at once", cam, at, i)
				}
				at, fence = i, l.Fence
			}
		}
		return at, fence
	}
	steady := func(nodes []*node) bool {
		for i, c := range cams {
			if at, _ := ownerOf(nodes, c.ID); at < 0 || ups[i].Readers() != 1 {
				return false
			}
		}
		return true
	}
	flowing := func(min int64) bool {
		for i := range packets {
			for _, p := range packets[i] {
				if p.Load() < min {
					return false
				}
			}
		}
		return true
	}
	poll.Until(t, "every camera to have one owner and one reader, every viewer video", func() bool { return steady(all) && flowing(20) })
	// na, started first, took every camera; after the cool-down nb takes
	// three of them, by the same moves.
	poll.Within(t, time.Minute, "na and nb to own three cameras each", func() bool {
		n := 0
		for _, c := range cams {
			if at, _ := ownerOf(all, c.ID); at == 1 {
				n++
			}
		}
		return n == 3 && steady(all)
	})
	before := map[string][2]uint64{}
	for _, c := range cams {
		at, fence := ownerOf(all, c.ID)
		before[c.ID] = [2]uint64{uint64(at), fence}
	}
	for _, up := range ups {
		up.LowestReaders()
	}

	joined := time.Now()
	nc := start("nc")
	all = append(all, nc)
	per := func() map[int]int {
		out := map[int]int{}
		for _, c := range cams {
			at, _ := ownerOf(all, c.ID)
			out[at]++
		}
		return out
	}
	poll.Within(t, time.Minute, "nc to take its share, two cameras, and each camera one reader", func() bool {
		p := per()
		return p[0] == 2 && p[1] == 2 && p[2] == 2 && steady(all)
	})
	t.Logf("nc took its share in %v (cool-down %v, lease_ttl 1s)", time.Since(joined), 10*time.Second)
	mid := make([][]int64, len(packets))
	for i := range packets {
		for _, p := range packets[i] {
			mid[i] = append(mid[i], p.Load())
		}
	}
	poll.Until(t, "every viewer to keep receiving video", func() bool {
		for i := range packets {
			for j, p := range packets[i] {
				if p.Load() < mid[i][j]+20 {
					return false
				}
			}
		}
		return true
	})
	for i, n := range viewers {
		if got := n.g.Sessions().CountSubject("alice"); got != k {
			t.Fatalf("node %d has %d of alice's %d sessions after the moves", i, got, k)
		}
	}
	for i, c := range cams {
		at, fence := ownerOf(all, c.ID)
		if at != 2 {
			if low := ups[i].LowestReaders(); low < 1 {
				t.Fatalf("%s (not moved) dropped to %d readers", c.ID, low)
			}
			continue
		}
		if low := ups[i].LowestReaders(); low < 1 {
			t.Fatalf("%s dropped to %d readers while it moved: break before make", c.ID, low)
		}
		from := all[before[c.ID][0]]
		if fence <= before[c.ID][1] {
			t.Fatalf("%s moved with fence %d after %d", c.ID, fence, before[c.ID][1])
		}
		// The old owner stopped recording the camera; the two recordings
		// meet without a gap.
		var old, cur []time.Time
		poll.Until(t, "the old owner to stop recording "+c.ID, func() bool {
			for _, rec := range from.g.recorder.Recording() {
				if rec == c.ID {
					return false
				}
			}
			return true
		})
		for _, s := range from.g.archive.Segments(c.ID, time.Time{}, time.Now().Add(time.Hour)) {
			old = append(old, s.End())
		}
		poll.Until(t, "nc to index a segment of "+c.ID, func() bool {
			return len(nc.g.archive.Segments(c.ID, time.Time{}, time.Now().Add(time.Hour))) > 0
		})
		for _, s := range nc.g.archive.Segments(c.ID, time.Time{}, time.Now().Add(time.Hour)) {
			cur = append(cur, s.Start)
		}
		if len(old) == 0 {
			t.Fatalf("the old owner of %s has no segments", c.ID)
		}
		overlap := old[len(old)-1].Sub(cur[0])
		t.Logf("%s moved %s → nc (fence %d → %d): recordings overlap by %v", c.ID, from.g.Config.Cluster.NodeID, before[c.ID][1], fence, overlap)
		if overlap < -time.Second {
			t.Fatalf("%s's recording has a %v gap at the move", c.ID, -overlap)
		}
	}
}
