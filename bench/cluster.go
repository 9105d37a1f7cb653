package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/camgate/camgate/authz/token"
)

const (
	clusterSecret = "bench-cluster-secret-0123456789abcdef-0123"
	clusterTTL    = time.Second
)

// clusterViewer is one RTSP viewer of camera cam on node, noting every
// pause over 100 ms between two packets.
type clusterViewer struct {
	cam, node int
	r         *reader
	mu        sync.Mutex
	last      time.Time
	pauses    []pause
}

type pause struct {
	at time.Time // the last packet before it
	d  time.Duration
}

func (v *clusterViewer) packet() {
	now := time.Now()
	v.mu.Lock()
	if !v.last.IsZero() && now.Sub(v.last) > 100*time.Millisecond {
		v.pauses = append(v.pauses, pause{v.last, now.Sub(v.last)})
	}
	v.last = now
	v.mu.Unlock()
}

// since reports whether a packet arrived after t, and the longest pause
// that began at or after from.
func (v *clusterViewer) since(t, from time.Time) (bool, time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var longest time.Duration
	for _, p := range v.pauses {
		if !p.at.Before(from) {
			longest = max(longest, p.d)
		}
	}
	return v.last.After(t), longest
}

func (v *clusterViewer) close() {
	if v.r != nil {
		v.r.c.Close()
	}
}

// clusterCameras writes the cameras' configuration: rec<i> pulling the
// origin's relay path of the same name, every even one recorded.
func (e *env) clusterCameras(n int) (string, error) {
	var b strings.Builder
	b.WriteString("cameras:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {id: %s, site: bench, source: \"%s/%s\", record: %t}\n", relayPath(i), e.originBase(), relayPath(i), i%2 == 0)
	}
	cfg := filepath.Join(e.dir, "cluster-cameras.yml")
	return cfg, os.WriteFile(cfg, []byte(b.String()), 0o644)
}

// runCluster measures one node doing everything, then -nodes nodes sharing
// the cameras, then -kills owner kills and restarts (clusterKills).
func runCluster(ctx context.Context, e *env, o options) ([]result, error) {
	n, k := o.cameras, o.nodes
	if k < 2 || n < k {
		return nil, fmt.Errorf("cluster: -nodes must be at least 2 and -cameras at least -nodes")
	}
	cfg, err := e.clusterCameras(n)
	if err != nil {
		return nil, err
	}
	tok, err := token.MintHS256([]byte(benchSecret), "bench", 24*time.Hour, time.Now())
	if err != nil {
		return nil, err
	}
	seg := "CAMGATE_ARCHIVE_SEGMENT_DURATION=" + o.segment.String()

	// One node doing everything.
	single, err := e.startNodeConfig(ctx, "single", filepath.Join(e.dir, "data-single"), cfg, []string{seg})
	if err != nil {
		return nil, err
	}
	one, err := e.clusterWindow(ctx, o, []*node{single}, tok, "one node")
	single.stop()
	if err != nil {
		return nil, err
	}
	res := []result{{Target: "one node", Round: 1, Metrics: one}}

	// The cluster.
	url, err := e.startRedis(ctx)
	if err != nil {
		return nil, err
	}
	var nodes []*node
	for i := range k {
		id := fmt.Sprintf("n%d", i+1)
		nd, err := e.startNodeConfig(ctx, id, filepath.Join(e.dir, "data-"+id), cfg, []string{seg,
			"CAMGATE_REDIS_URL=" + url, "CAMGATE_CLUSTER_ENABLED=true", "CAMGATE_CLUSTER_NODE_ID=" + id,
			"CAMGATE_CLUSTER_SECRET=" + clusterSecret, "CAMGATE_CLUSTER_LEASE_TTL=" + clusterTTL.String()})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, nd)
		e.nodes = append(e.nodes, nd) // stopped by env.close if the run fails half-way
	}
	all, err := e.clusterWindow(ctx, o, nodes, tok, "cluster")
	if err != nil {
		return nil, err
	}
	res = append(res, result{Target: "cluster", Round: 1, Metrics: all})
	kills, err := e.clusterKills(ctx, o, nodes, tok)
	if err != nil {
		return nil, err
	}
	for _, nd := range nodes {
		nd.stop()
	}
	rec, err := clusterRecordings(nodes, n, kills.at)
	if err != nil {
		return nil, err
	}
	for k, v := range rec {
		kills.m[k] = v
	}
	res = append(res, result{Target: "cluster kills", Round: 1, Metrics: kills.m})
	return res, nil
}

// clusterWindow grants the viewer, opens one viewer per camera (camera i
// on node i mod len(nodes)), waits until every camera has one owner, one
// reader at the origin and is watched, the placement is even and every
// recorded camera writes, and then measures CPU over -duration.
func (e *env) clusterWindow(ctx context.Context, o options, nodes []*node, tok, label string) (map[string]float64, error) {
	n := o.cameras
	if err := nodes[0].apiOK(ctx, http.MethodPut, "/subjects/bench", `{"kind":"user"}`); err != nil {
		return nil, err
	}
	if err := nodes[0].apiOK(ctx, http.MethodPut, "/grants/bench", `{"subject":"bench","site":"bench","actions":["live","sound"]}`); err != nil {
		return nil, err
	}
	viewers, err := openViewers(ctx, nodes, n, tok)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, v := range viewers {
			v.close()
		}
	}()
	started := time.Now()
	step("%s: waiting for every camera to have one owner, one upstream connection and a viewer with video", label)
	settle := func() (bool, error) {
		up, err := e.originReaders(ctx, n)
		if err != nil {
			return false, err
		}
		if slices.Max(up) != 1 || slices.Min(up) != 1 {
			return false, nil
		}
		for _, v := range viewers {
			if ok, _ := v.since(started, started); !ok {
				return false, nil
			}
		}
		if len(nodes) == 1 {
			return true, nil
		}
		per, err := ownersPerNode(ctx, nodes)
		return err == nil && balanced(per, nodes, n), nil
	}
	if err := until(ctx, 90*time.Second, settle); err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	settled := time.Since(started)
	if err := waitCtx(ctx, o.warmup, label+": warm-up"); err != nil {
		return nil, err
	}
	cpu0 := make([]float64, len(nodes))
	for i, nd := range nodes {
		cpu0[i], _ = cpuSeconds(nd.cmd.Process.Pid)
	}
	t0 := time.Now()
	if err := waitCtx(ctx, o.duration, fmt.Sprintf("%s: %d cameras, %d nodes", label, n, len(nodes))); err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	m := map[string]float64{"settle_s": settled.Seconds()}
	total, most := 0.0, 0.0
	for i, nd := range nodes {
		c1, _ := cpuSeconds(nd.cmd.Process.Pid)
		c := (c1 - cpu0[i]) / secs
		total += c
		most = max(most, c)
		if len(nodes) > 1 {
			m["cpu_cores_"+nd.name] = c
		}
	}
	m["cpu_cores_total"], m["cpu_cores_max_node"] = total, most
	up, err := e.originReaders(ctx, n)
	if err != nil {
		return nil, err
	}
	m["upstream_per_camera_min"], m["upstream_per_camera_max"] = float64(slices.Min(up)), float64(slices.Max(up))
	if len(nodes) > 1 {
		per, err := ownersPerNode(ctx, nodes)
		if err != nil {
			return nil, err
		}
		for _, nd := range nodes {
			m["owned_"+nd.name] = float64(per[nd.name])
		}
	}
	return m, nil
}

// openViewers opens one viewer per camera, camera i on node i mod len(nodes).
func openViewers(ctx context.Context, nodes []*node, n int, tok string) ([]*clusterViewer, error) {
	out := make([]*clusterViewer, n)
	for i := range n {
		out[i] = &clusterViewer{cam: i, node: i % len(nodes)}
	}
	for _, v := range out {
		if err := v.open(ctx, nodes[v.node], tok); err != nil {
			for _, w := range out {
				w.close()
			}
			return nil, err
		}
	}
	return out, nil
}

// open dials the viewer's camera on nd, retrying while the node starts.
func (v *clusterViewer) open(ctx context.Context, nd *node, tok string) error {
	url := fmt.Sprintf("rtsp://%s/%s?token=%s", nd.rtsp, relayPath(v.cam), tok)
	var err error
	for range 40 {
		if v.r, err = dialWith(url, v.packet); err == nil {
			return nil
		}
		if sleepCtx(ctx, 250*time.Millisecond) != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("viewer of %s on %s: %w", relayPath(v.cam), nd.name, err)
}

// until polls cond every 100 ms for at most d.
func until(ctx context.Context, d time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v (last error: %v)", d, last)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// originReaders is how many sessions read each camera's origin path
// (mediamtx's API): the camera's upstream connections.
func (e *env) originReaders(ctx context.Context, n int) ([]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.apiMtx+"/v3/paths/list?itemsPerPage=10000", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mediamtx API: %w", err)
	}
	defer res.Body.Close()
	var list struct {
		Items []struct {
			Name    string            `json:"name"`
			Readers []json.RawMessage `json:"readers"`
		} `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("mediamtx API: %w", err)
	}
	out := make([]int, n)
	for _, it := range list.Items {
		var i int
		if _, err := fmt.Sscanf(it.Name, "rec%d", &i); err == nil && i >= 0 && i < n {
			out[i] = len(it.Readers)
		}
	}
	return out, nil
}

// cameraOwners asks nd's cameras API for each camera's owner node ("" for
// none), by camera index.
func cameraOwners(ctx context.Context, nd *node) (map[int]string, error) {
	code, b, err := nd.api(ctx, http.MethodGet, "/cameras", "")
	if err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("cameras API on %s: %d %v", nd.name, code, err)
	}
	var list struct {
		Cameras []struct {
			ID    string `json:"id"`
			Owner *struct {
				Node string `json:"node"`
			} `json:"owner"`
		} `json:"cameras"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, c := range list.Cameras {
		var i int
		if _, err := fmt.Sscanf(c.ID, "rec%d", &i); err == nil {
			out[i] = ""
			if c.Owner != nil {
				out[i] = c.Owner.Node
			}
		}
	}
	return out, nil
}

// ownersPerNode counts the cameras each node owns ("": nobody).
func ownersPerNode(ctx context.Context, nodes []*node) (map[string]int, error) {
	owners, err := cameraOwners(ctx, nodes[0])
	if err != nil {
		return nil, err
	}
	per := map[string]int{}
	for _, owner := range owners {
		per[owner]++
	}
	return per, nil
}

// balanced: every camera owned, and no node owns more than one camera
// more than another (the placement rebalancing converges to).
func balanced(per map[string]int, nodes []*node, n int) bool {
	if per[""] != 0 {
		return false
	}
	lo, hi := n, 0
	for _, nd := range nodes {
		lo, hi = min(lo, per[nd.name]), max(hi, per[nd.name])
	}
	return hi-lo <= 1
}

// killRun is what the kills measured, and when each kill was.
type killRun struct {
	m  map[string]float64
	at []time.Time
}

// clusterKills kills (SIGKILL) node i mod k, -kills times: the time until
// its cameras have live owners, the pause of the viewers of those cameras
// on the surviving nodes, and, once it is restarted, the time until it has
// taken its share of the cameras again.
func (e *env) clusterKills(ctx context.Context, o options, nodes []*node, tok string) (killRun, error) {
	n, k := o.cameras, len(nodes)
	viewers, err := openViewers(ctx, nodes, n, tok)
	if err != nil {
		return killRun{}, err
	}
	defer func() {
		for _, v := range viewers {
			v.close()
		}
	}()
	var failover, share, pauses []float64
	var at []time.Time
	lost, upMax := 0, 0
	for round := range o.kills {
		victim := nodes[round%k]
		owned, err := camerasOwnedBy(ctx, nodes, victim.name)
		if err != nil {
			return killRun{}, err
		}
		step("kill %d/%d: SIGKILL %s (owns %d cameras)", round+1, o.kills, victim.name, len(owned))
		victim.closing.Store(true)
		killed := time.Now()
		_ = victim.cmd.Process.Kill()
		<-victim.exited
		at = append(at, killed)
		// A camera still needed (recorded, or watched on a live node) has a
		// live owner again; one only watched on the victim has none.
		needed := func(i int) bool { return i%2 == 0 || i%k != round%k }
		if err := until(ctx, 30*time.Second, func() (bool, error) {
			owners, err := cameraOwners(ctx, nodes[(round+1)%k])
			if err != nil {
				return false, err
			}
			for i := range n {
				if needed(i) && (owners[i] == "" || owners[i] == victim.name) {
					return false, nil
				}
			}
			return true, nil
		}); err != nil {
			return killRun{}, fmt.Errorf("failover after killing %s: %w", victim.name, err)
		}
		failover = append(failover, time.Since(killed).Seconds())
		// The viewers of its cameras on the other nodes resume.
		var watch []*clusterViewer
		for _, v := range viewers {
			if v.node != round%k && slices.Contains(owned, v.cam) {
				watch = append(watch, v)
			}
		}
		resumed := func() (bool, error) {
			for _, v := range watch {
				if ok, _ := v.since(time.Now().Add(-200*time.Millisecond), killed); !ok {
					return false, nil
				}
			}
			return true, nil
		}
		if until(ctx, 20*time.Second, resumed) != nil {
			for _, v := range watch {
				if ok, _ := v.since(killed, killed); !ok {
					lost++
				}
			}
		}
		for _, v := range watch {
			if _, d := v.since(killed, killed.Add(-time.Second)); d > 0 {
				pauses = append(pauses, ms(d))
			}
		}
		if err := until(ctx, 20*time.Second, func() (bool, error) {
			up, err := e.originReaders(ctx, n)
			if err != nil {
				return false, err
			}
			upMax = max(upMax, slices.Max(up))
			for i, r := range up {
				if r > 1 || (needed(i) && r != 1) {
					return false, nil
				}
			}
			return true, nil
		}); err != nil {
			return killRun{}, fmt.Errorf("one upstream connection per camera after killing %s: %w", victim.name, err)
		}
		// It comes back and takes its share again, by make-before-break moves.
		restarted := time.Now()
		if err := e.restartNode(ctx, victim); err != nil {
			return killRun{}, err
		}
		for _, v := range viewers {
			if v.node == round%k {
				v.close()
				if err := v.open(ctx, victim, tok); err != nil {
					return killRun{}, err
				}
			}
		}
		if err := until(ctx, 90*time.Second, func() (bool, error) {
			per, err := ownersPerNode(ctx, nodes)
			return err == nil && balanced(per, nodes, n) && per[victim.name] >= n/k, err
		}); err != nil {
			return killRun{}, fmt.Errorf("%s taking its share after a restart: %w", victim.name, err)
		}
		share = append(share, time.Since(restarted).Seconds())
		step("kill %d/%d: failover %.2f s, %s took its share again %.1f s after its restart", round+1, o.kills,
			failover[len(failover)-1], victim.name, share[len(share)-1])
	}
	// Once no move is under way, every camera has one upstream connection.
	var up []int
	if err := until(ctx, 30*time.Second, func() (bool, error) {
		var err error
		up, err = e.originReaders(ctx, n)
		return err == nil && slices.Max(up) == 1 && slices.Min(up) == 1, err
	}); err != nil {
		return killRun{}, fmt.Errorf("one upstream connection per camera at the end: %v", up)
	}
	slices.Sort(failover)
	slices.Sort(share)
	slices.Sort(pauses)
	return killRun{at: at, m: map[string]float64{
		"kills":                          float64(len(at)),
		"failover_s_p50":                 percentile(failover, 50),
		"failover_s_max":                 slices.Max(failover),
		"viewer_pause_ms_p50":            percentile(pauses, 50),
		"viewer_pause_ms_p99":            percentile(pauses, 99),
		"viewer_pauses":                  float64(len(pauses)),
		"viewers_lost":                   float64(lost),
		"share_after_restart_s":          percentile(share, 50),
		"share_after_restart_max":        slices.Max(share),
		"upstream_per_camera_max_moving": float64(upMax), // 2 while a move is make-before-break
		"upstream_per_camera_end":        float64(slices.Max(up)),
	}}, nil
}

// camerasOwnedBy lists the cameras (by index) node id owns.
func camerasOwnedBy(ctx context.Context, nodes []*node, id string) ([]int, error) {
	owners, err := cameraOwners(ctx, nodes[0])
	if err != nil {
		return nil, err
	}
	var out []int
	for i, owner := range owners {
		if owner == id {
			out = append(out, i)
		}
	}
	return out, nil
}

// restartNode starts a killed node again: same id, ports and data folder.
func (e *env) restartNode(ctx context.Context, nd *node) error {
	cmd := exec.Command(nd.cmd.Path, nd.cmd.Args[1:]...)
	cmd.Env, cmd.Stderr = nd.cmd.Env, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	nd.cmd, nd.exited = cmd, make(chan struct{})
	nd.closing.Store(false)
	go nd.watch()
	return waitTCP(ctx, strings.TrimPrefix(nd.http, "http://"))
}

// clusterRecordings reads every node's segments of each recorded camera
// (the nodes have stopped) and reports how many copies of each recorded
// second there are (footage over its union) and the holes in the union:
// those within 20 s after a kill are the recording gap of that kill, the
// others (moves) are counted apart.
func clusterRecordings(nodes []*node, n int, kills []time.Time) (map[string]float64, error) {
	type span struct {
		start, end time.Time
		node       int
	}
	var footage, union time.Duration
	var killGaps, overlaps []float64
	otherGaps, segments, dups := 0, 0, 0
	otherMax := 0.0
	for i := 0; i < n; i += 2 {
		var spans []span
		for ni, nd := range nodes {
			names, _ := filepath.Glob(filepath.Join(nd.dataDir, "archive", relayPath(i), "*.mp4"))
			for _, name := range names {
				start, err := parseSegment(strings.TrimSuffix(filepath.Base(name), ".mp4"))
				if err != nil {
					return nil, err
				}
				d, _, _, err := segmentDuration(name)
				if err != nil || d <= 0 {
					continue // nothing complete in it
				}
				spans = append(spans, span{start, start.Add(d), ni})
				footage += d
				segments++
			}
		}
		slices.SortFunc(spans, func(a, b span) int { return a.start.Compare(b.start) })
		// Where two nodes recorded the same time (a handoff), and whether a
		// segment is a copy (more than half of it recorded elsewhere too).
		for x, a := range spans {
			var covered time.Duration
			for y, b := range spans {
				if a.node == b.node {
					continue
				}
				o := time.Duration(min(a.end.UnixNano(), b.end.UnixNano()) - max(a.start.UnixNano(), b.start.UnixNano()))
				if o <= 0 {
					continue
				}
				covered += o
				if y > x {
					overlaps = append(overlaps, ms(o))
				}
			}
			if covered*2 > a.end.Sub(a.start) {
				dups++
			}
		}
		var cur span
		for j, s := range spans {
			if j == 0 {
				cur = s
				continue
			}
			if s.start.After(cur.end) {
				union += cur.end.Sub(cur.start)
				if g := s.start.Sub(cur.end); g > 100*time.Millisecond {
					afterKill := false
					for _, k := range kills {
						if !cur.end.Before(k.Add(-2*time.Second)) && cur.end.Before(k.Add(20*time.Second)) {
							afterKill = true
						}
					}
					if afterKill {
						killGaps = append(killGaps, ms(g))
					} else {
						otherGaps++
						otherMax = max(otherMax, ms(g))
					}
				}
				cur = s
				continue
			}
			if s.end.After(cur.end) {
				cur.end = s.end
			}
		}
		union += cur.end.Sub(cur.start)
	}
	slices.Sort(killGaps)
	slices.Sort(overlaps)
	return map[string]float64{
		"segments":                float64(segments),
		"segments_copied":         float64(dups),
		"handoff_overlaps":        float64(len(overlaps)),
		"handoff_overlap_ms_p50":  percentile(overlaps, 50),
		"handoff_overlap_ms_max":  percentile(overlaps, 100),
		"copies_per_second":       footage.Seconds() / max(union.Seconds(), 1e-9),
		"overlap_s":               (footage - union).Seconds(),
		"recording_gap_ms_p50":    percentile(killGaps, 50),
		"recording_gap_ms_p99":    percentile(killGaps, 99),
		"recording_gaps_at_kills": float64(len(killGaps)),
		"other_gaps":              float64(otherGaps),
		"other_gap_ms_max":        otherMax,
	}, nil
}
