package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/camgate/camgate/gateway/stream"
)

// A camera moved to this node by rebalancing (gateway/cluster handoff.go)
// is make-before-break here too: when the move starts (OnPrepare), this
// node's stream of the camera reconnects to the camera itself (sourceFor:
// Moving is as good as owning), its recording starts once the camera
// described itself, and once the first keyframe from the camera arrives
// the node says Ready. The old owner then
// hands the lease over and stops its own recording, so the two recordings
// overlap by about a renewal round (TTL/3) and the archive has no gap. When
// the lease arrives (OnAcquire) the stream already pulls the camera: it is
// not reconnected again. A move given up (OnLose) reconnects the stream to
// the owner and stops the recording.

// moveWatches are the moves into this node under way, by camera.
type moveWatches struct {
	mu sync.Mutex
	m  map[string]*moveWatch
	wg sync.WaitGroup
}

type moveWatch struct {
	armed     atomic.Bool   // the stream dialled again since the move started: that dial is the camera's
	described atomic.Bool   // and the camera described itself on it
	onCamera  chan struct{} // closed when described
	done      chan struct{}
	once      sync.Once
	camOnce   sync.Once
}

func (w *moveWatch) end() { w.once.Do(func() { close(w.done) }) }

func (ws *moveWatches) get(camera string) *moveWatch {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.m[camera]
}

// end ends camera's move, if one is under way; true when there was one.
func (ws *moveWatches) end(camera string) bool {
	ws.mu.Lock()
	w := ws.m[camera]
	delete(ws.m, camera)
	ws.mu.Unlock()
	if w != nil {
		w.end()
	}
	return w != nil
}

// upstream follows the stream's states for a move: a dial ("connecting")
// after the move started is to the camera, and its "ready" is the
// camera's description.
func (ws *moveWatches) upstream(camera, state string) {
	w := ws.get(camera)
	if w == nil {
		return
	}
	switch state {
	case "connecting":
		w.armed.Store(true)
	case "ready":
		if w.armed.Load() {
			w.described.Store(true)
			w.camOnce.Do(func() { close(w.onCamera) })
		}
	}
}

// prepareMove runs on the cluster's goroutine when a move of camera to
// this node starts.
func (g *Gateway) prepareMove(camera string) {
	w := &moveWatch{done: make(chan struct{}), onCamera: make(chan struct{})}
	g.moves.mu.Lock()
	if g.moves.m == nil {
		g.moves.m = map[string]*moveWatch{}
	}
	if old := g.moves.m[camera]; old != nil {
		old.end()
	}
	g.moves.m[camera] = w
	g.moves.wg.Add(1)
	g.moves.mu.Unlock()
	go func() {
		defer g.moves.wg.Done()
		g.watchMove(camera, w)
	}()
}

// errPlaying ends the watch's reader.
var errPlaying = errors.New("playing")

// watchMove holds camera's stream while it moves here: it makes the stream
// pull the camera itself, starts the recording, and says Ready at the
// first keyframe from the camera.
func (g *Gateway) watchMove(camera string, w *moveWatch) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-w.done
		cancel()
	}()
	st, release, err := g.hub.Acquire(ctx, camera)
	if err != nil {
		g.Logger.Warn("cluster: a camera moving here does not play", "camera", camera, "error", err)
		return // the move times out and is given up
	}
	defer release()
	if !w.armed.Load() { // the stream was pulling from the owner
		g.hub.Reconnect(camera)
	}
	// The recording starts once the camera described itself: the stream's
	// cached GOP is then the camera's own (the owner's, relayed, was up to
	// a GOP old and would only lengthen the overlap).
	select {
	case <-w.onCamera:
	case <-ctx.Done():
		return
	}
	g.syncRecorders()
	// Playing is the first keyframe from the camera (the first packet, for
	// a camera without video).
	v, key := st.Video, true
	if len(v.Desc.Medias) == 0 {
		v, key = st.Full, false
	}
	r := stream.NewReader(stream.DefaultQueueSize)
	r.SetLatencyTolerant()
	if v.AddReader(r) != nil {
		return
	}
	err = r.Run(ctx, func(batch []*stream.Packet) error {
		for _, p := range batch {
			if w.described.Load() && (p.Key || !key) {
				return errPlaying
			}
		}
		return nil
	})
	r.Close()
	n := g.cluster.Load()
	if !errors.Is(err, errPlaying) {
		return
	}
	if n != nil && ctx.Err() == nil {
		n.Ready(camera)
	}
	<-ctx.Done() // hold the stream until the lease arrives or the move is given up
}
