package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// In a cluster a camera's segments are held by whichever node recorded
// them (its owner at the time). The store then lists, besides its own
// segments, those the shared index says other nodes hold, and reads their
// bytes from the holder (Peers) when it serves them. Every segment is
// authorized here, at the node the viewer asked, exactly as an own one;
// the holder only checks that the request comes from a node of the
// cluster. A remote segment is never read before it is authorized.

// Peers reads segments that other nodes hold.
type Peers interface {
	// ReadSegment returns the seg.Size bytes of segment seg of camera from
	// the node that holds it (seg.Node()). A holder that is not running is
	// ErrHolderDown.
	ReadSegment(ctx context.Context, camera string, seg Segment) ([]byte, error)
}

// ErrHolderDown: the node holding a segment is not running; its segments
// are listed but cannot be read until it is back (answered 503).
var ErrHolderDown = errors.New("the node holding the segment is down")

// Cluster joins the store to a cluster (see JoinCluster).
type Cluster struct {
	// Shared is the cluster's segment index (required).
	Shared SharedIndex
	// Peers reads the segments other nodes hold (required).
	Peers Peers
	// Node is this node's id, shown in listings (required).
	Node string
}

// cluster is the store's link to a cluster, set once by JoinCluster.
type clusterLink struct {
	Cluster
	queue   chan publication
	dropped atomic.Int64
	dirty   atomic.Bool // a write failed or was dropped: Sync again
}

type publication struct {
	camera string
	seg    Segment
	remove bool
}

// publishQueue bounds the shared-index writes waiting for Redis; the
// writers never wait for it. A write that fails, or is dropped from a full
// queue, is repaired by a Sync every resyncEvery until one succeeds.
const (
	publishQueue = 4096
	resyncEvery  = 2 * time.Second
)

// sharedTimeout bounds one shared-index call.
const sharedTimeout = 5 * time.Second

// JoinCluster makes the store publish its segments to c.Shared (all of its
// own at once, then each new one and each deletion) and serve the
// segments other nodes hold. It is called at most once, after Initialize
// and before recording starts; without it the store is a single node's.
func (s *Store) JoinCluster(c Cluster) error {
	if c.Shared == nil || c.Peers == nil || c.Node == "" {
		return errors.New("archive: JoinCluster needs Shared, Peers and Node")
	}
	l := &clusterLink{Cluster: c, queue: make(chan publication, publishQueue)}
	if !s.cluster.CompareAndSwap(nil, l) {
		return errors.New("archive: already in a cluster")
	}
	ctx, cancel := context.WithTimeout(s.ctx, sharedTimeout)
	defer cancel()
	if err := c.Shared.Sync(ctx, ownView{s.index}); err != nil {
		s.Logger.Warn("archive: the shared index could not be brought up to date; retrying", "error", err)
		l.dirty.Store(true)
	}
	s.wg.Add(1)
	go s.publish(l)
	return nil
}

// published queues a shared-index change (no-op outside a cluster).
func (s *Store) published(camera string, seg Segment, remove bool) {
	l := s.cluster.Load()
	if l == nil {
		return
	}
	select {
	case l.queue <- publication{camera: camera, seg: seg, remove: remove}:
	default:
		l.dirty.Store(true)
		if l.dropped.Add(1) == 1 {
			s.Logger.Warn("archive: shared index queue full, a segment change was dropped", "camera", camera)
		}
	}
}

// publish owns the shared-index writes: it batches what is queued, in
// order, repairs what failed, and at close drains what is left.
func (s *Store) publish(l *clusterLink) {
	defer s.wg.Done()
	t := time.NewTicker(resyncEvery)
	defer t.Stop()
	for {
		select {
		case p := <-l.queue:
			s.flushPublications(l, p)
		case <-t.C:
			if l.dirty.Load() {
				s.resync(l)
			}
		case <-s.ctx.Done():
			for {
				select {
				case p := <-l.queue:
					s.flushPublications(l, p)
				default:
					return
				}
			}
		}
	}
}

func (s *Store) flushPublications(l *clusterLink, first publication) {
	batch := []publication{first}
	for len(batch) < 256 {
		select {
		case p := <-l.queue:
			batch = append(batch, p)
			continue
		default:
		}
		break
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	// Runs of one camera and one kind go in one call, keeping the order.
	for i := 0; i < len(batch); {
		j := i + 1
		for j < len(batch) && batch[j].camera == batch[i].camera && batch[j].remove == batch[i].remove {
			j++
		}
		segs := make([]Segment, 0, j-i)
		for _, p := range batch[i:j] {
			segs = append(segs, p.seg)
		}
		var err error
		if batch[i].remove {
			err = l.Shared.Unpublish(ctx, batch[i].camera, segs)
		} else {
			err = l.Shared.Publish(ctx, batch[i].camera, segs)
		}
		if err != nil {
			if !l.dirty.Swap(true) {
				s.Logger.Warn("archive: shared index write failed; repairing when Redis answers", "camera", batch[i].camera, "segments", len(segs), "error", err)
			}
		}
		i = j
	}
}

// resync brings the shared index up to date with our folder after failed
// writes (a Redis outage).
func (s *Store) resync(l *clusterLink) {
	ctx, cancel := context.WithTimeout(s.ctx, sharedTimeout)
	defer cancel()
	l.dirty.Store(false) // writes failing from now on set it again
	if err := l.Shared.Sync(ctx, ownView{s.index}); err != nil {
		l.dirty.Store(true)
		return
	}
	s.Logger.Info("archive: shared index repaired")
}

// segmentsOf is what the store serves of camera in [start, end): its own
// segments and, in a cluster, those other nodes hold. Where two overlap
// (two nodes recorded the camera for a moment), ours wins and a segment
// covered by an earlier one is left out. Without the shared index (Redis
// down) it is our own only, logged.
func (s *Store) segmentsOf(ctx context.Context, camera string, start, end time.Time) []Segment {
	own := s.index.rangeOf(camera, start, end)
	l := s.cluster.Load()
	if l == nil {
		return own
	}
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	held, err := l.Shared.Held(ctx, camera, start, end)
	if err != nil {
		s.Logger.Warn("archive: the shared index is unreachable; serving this node's segments only", "camera", camera, "error", err)
		return own
	}
	return mergeHeld(own, held)
}

// Footage returns the segments of camera overlapping [start, end) that
// this node can serve: its own and, in a cluster, those other nodes hold
// (WriteSegmentInit and WriteSegmentMedia read those from their holder).
// Deciding who may see them is the caller's.
func (s *Store) Footage(ctx context.Context, camera string, start, end time.Time) []Segment {
	return s.segmentsOf(ctx, camera, start, end)
}

// mergeHeld merges own (sorted) and held segments by start time.
func mergeHeld(own, held []Segment) []Segment {
	if len(held) == 0 {
		return own
	}
	all := append(slices.Clip(own), held...)
	slices.SortStableFunc(all, func(a, b Segment) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.node, b.node) // ours ("") first
	})
	out := all[:0]
	for _, sg := range all {
		if n := len(out); n > 0 && !sg.End().After(out[n-1].End()) {
			continue // same start, or inside the previous one
		}
		out = append(out, sg)
	}
	return out
}

// lookupAny finds the segment of camera starting at start, ours or held
// by another node.
func (s *Store) lookupAny(ctx context.Context, camera string, start time.Time) (Segment, bool) {
	if sg, ok := s.index.lookup(camera, start); ok {
		return sg, true
	}
	for _, sg := range s.segmentsOf(ctx, camera, start, start.Add(time.Microsecond)) {
		if sg.Start.Equal(start) {
			return sg, true
		}
	}
	return Segment{}, false
}

// readHeld reads a segment another node holds.
func (s *Store) readHeld(ctx context.Context, camera string, seg Segment) ([]byte, error) {
	l := s.cluster.Load()
	if l == nil {
		return nil, fmt.Errorf("archive: segment %s of %s is held by node %s, and this node is not in a cluster", seg.ID(), camera, seg.node)
	}
	b, err := l.Peers.ReadSegment(ctx, camera, seg)
	if err != nil {
		return nil, fmt.Errorf("archive: segment %s of %s is held by node %s: %w", seg.ID(), camera, seg.node, err)
	}
	if int64(len(b)) != seg.Size {
		return nil, fmt.Errorf("archive: segment %s of %s from node %s: %d bytes, the index says %d", seg.ID(), camera, seg.node, len(b), seg.Size)
	}
	return b, nil
}

// HeldReads is how many of its segments this node served to other nodes.
func (s *Store) HeldReads() int64 { return s.heldReads.Load() }

// ServeHeld answers another node's read of one of our own segments (GET
// /archive/{camera}/held/{segment}.mp4): its complete bytes as recorded.
// The caller has authenticated the node (a node token scoped to this
// segment); nothing here decides for a viewer.
func (s *Store) ServeHeld(ctx *fasthttp.RequestCtx, camera, id string) {
	start, ok := s.segmentRequest(ctx, camera, id)
	if !ok {
		return
	}
	seg, ok := s.index.lookup(camera, start)
	if !ok || seg.src != 0 {
		s.writeError(ctx, fmt.Errorf("%w: this node holds no segment %s of %s", ErrNotFound, id, camera))
		return
	}
	b, err := s.readSegment(camera, seg)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	s.heldReads.Add(1)
	ctx.SetContentType("video/mp4")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetBody(b)
}

// PeerClient reads segments from their holding nodes over HTTP.
type PeerClient struct {
	// Locate returns the base URL ("http://10.0.0.21:8080") of a live
	// node, ErrHolderDown when it is not running.
	Locate func(ctx context.Context, node string) (string, error)
	// Token authenticates this node to the holder for one segment.
	Token func(node, camera, segment string) string
	// Client defaults to one with a 30 s timeout.
	Client *http.Client
}

// ReadSegment implements Peers.
func (c *PeerClient) ReadSegment(ctx context.Context, camera string, seg Segment) ([]byte, error) {
	base, err := c.Locate(ctx, seg.node)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/archive/"+camera+"/held/"+seg.ID()+segmentExt, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token(seg.node, camera, seg.ID()))
	hc := c.Client
	if hc == nil {
		hc = defaultPeerHTTP
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHolderDown, err)
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: the holder deleted it (retention)", ErrNotFound)
	case res.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("the holder answered %s", res.Status)
	}
	b := make([]byte, seg.Size)
	if _, err := io.ReadFull(res.Body, b); err != nil {
		return nil, fmt.Errorf("reading from the holder: %w", err)
	}
	return b, nil
}

var defaultPeerHTTP = &http.Client{Timeout: 30 * time.Second}
