package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"

	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/internal/backoff"
)

// ErrUpstreamUnavailable is returned by Acquire when the camera's upstream
// did not deliver a description in time.
var ErrUpstreamUnavailable = errors.New("upstream unavailable")

// Hub owns every live stream of this node: one upstream pull per camera,
// opened by the first Acquire and closed Linger after the last release.
type Hub struct {
	// Sources resolves a camera to a fresh upstream connection. It is called
	// at every (re)connect, so a changed source URL takes effect on the next
	// reconnect. An error wrapping ErrUnknownCamera ends the stream.
	Sources func(camera string) (source.Source, error)
	// Linger keeps an unused upstream open this long (default 10 s).
	Linger time.Duration
	// ReadyTimeout bounds how long Acquire waits for the upstream (default 10 s).
	ReadyTimeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay (default 250 ms, 10 s).
	BackoffMin, BackoffMax time.Duration
	// GOPForViewersOnly caches a camera's GOP only while it has viewers
	// (and a minute after), not for a recording alone: ~0.5 MiB less per
	// recorded camera nobody watches, for a first viewer who waits for a
	// keyframe. Default false: the GOP is always cached.
	GOPForViewersOnly bool
	// LossWindow is the window of the sustained-loss rule (upstream_loss.go):
	// three lossy windows in a row are sustained loss. Default 10 s.
	LossWindow time.Duration
	// OnUpstream, when set, is told of upstream state changes ("connecting",
	// "ready", "error", "closed") for metrics.
	OnUpstream func(camera, state string)
	// Logger (default: discard).
	Logger *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // guards streams and every entry's users/linger
	streams map[string]*hubEntry
	pool    *packetPool // shared by every stream
}

// ErrUnknownCamera is what Sources returns for a camera that does not exist.
var ErrUnknownCamera = errors.New("unknown camera")

type hubEntry struct {
	stream  *Stream
	cancel  context.CancelFunc
	done    chan struct{}
	users   int
	linger  *time.Timer
	lastErr atomic.Pointer[error]
	reconns atomic.Uint64
	// attempt cancels the current upstream connection (Reconnect); redial
	// tells run to dial again at once, without counting a failure.
	attempt atomic.Pointer[context.CancelFunc]
	redial  atomic.Bool
	loss    *lossMonitor
}

// Initialize applies defaults and starts the hub.
func (h *Hub) Initialize() error {
	if h.Sources == nil {
		return errors.New("stream hub: Sources is required")
	}
	if h.Linger <= 0 {
		h.Linger = 10 * time.Second
	}
	if h.ReadyTimeout <= 0 {
		h.ReadyTimeout = 10 * time.Second
	}
	if h.BackoffMin <= 0 {
		h.BackoffMin = 250 * time.Millisecond
	}
	if h.BackoffMax <= 0 {
		h.BackoffMax = 10 * time.Second
	}
	if h.LossWindow <= 0 {
		h.LossWindow = 10 * time.Second
	}
	if h.Logger == nil {
		h.Logger = slog.New(slog.DiscardHandler)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.streams = make(map[string]*hubEntry)
	h.pool = newPacketPool()
	return nil
}

// Close stops every upstream and ends every stream.
func (h *Hub) Close() {
	h.cancel()
	h.wg.Wait()
}

// Acquire returns the camera's stream once it is ready, opening the upstream
// if needed. release must be called exactly once when the caller is done.
func (h *Hub) Acquire(ctx context.Context, camera string) (s *Stream, release func(), err error) {
	h.mu.Lock()
	if h.ctx.Err() != nil {
		h.mu.Unlock()
		return nil, nil, ErrClosed
	}
	e := h.streams[camera]
	if e == nil {
		e = h.start(camera)
	}
	e.users++
	if e.linger != nil {
		e.linger.Stop()
		e.linger = nil
	}
	h.mu.Unlock()

	var once sync.Once
	release = func() { once.Do(func() { h.release(camera, e) }) }

	t := time.NewTimer(h.ReadyTimeout)
	defer t.Stop()
	select {
	case <-e.stream.Ready():
		return e.stream, release, nil
	case <-e.done:
		err = ErrClosed
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = ErrUpstreamUnavailable
	}
	release()
	if last := e.lastErr.Load(); last != nil {
		if errors.Is(*last, ErrUnknownCamera) {
			return nil, nil, *last
		}
		err = fmt.Errorf("%w: %w", ErrUpstreamUnavailable, *last)
	}
	return nil, nil, err
}

// start creates an entry and its upstream goroutine (h.mu held).
func (h *Hub) start(camera string) *hubEntry {
	ctx, cancel := context.WithCancel(h.ctx)
	e := &hubEntry{stream: newStream(camera, h.pool), cancel: cancel, done: make(chan struct{})}
	e.stream.users.viewersOnly = h.GOPForViewersOnly
	e.loss = &lossMonitor{log: h.Logger.With("camera", camera), window: h.LossWindow, received: &e.stream.received}
	h.streams[camera] = e
	h.wg.Add(1)
	go h.run(ctx, camera, e)
	return e
}

func (h *Hub) release(camera string, e *hubEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e.users--
	if e.users > 0 || h.streams[camera] != e {
		return
	}
	e.linger = time.AfterFunc(h.Linger, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if e.users == 0 && h.streams[camera] == e {
			delete(h.streams, camera)
			e.cancel()
		}
	})
}

// Reset closes a camera's stream now (its readers end), e.g. when the camera
// was deleted or its source changed. The next Acquire opens a new one.
func (h *Hub) Reset(camera string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.streams[camera]; e != nil {
		delete(h.streams, camera)
		e.cancel()
	}
}

// Reconnect drops a camera's upstream connection and dials again at once
// (Sources is asked anew, e.g. because the camera's owner in the cluster
// changed); unlike Reset, the stream and its readers stay: they resume at
// the next keyframe, as after any upstream blip.
func (h *Hub) Reconnect(camera string) {
	h.mu.Lock()
	e := h.streams[camera]
	h.mu.Unlock()
	if e == nil {
		return
	}
	e.redial.Store(true)
	if c := e.attempt.Load(); c != nil {
		(*c)()
	}
}

// run pulls the upstream, reconnecting with exponential backoff, until the
// entry is cancelled or the camera disappears.
func (h *Hub) run(ctx context.Context, camera string, e *hubEntry) {
	defer h.wg.Done()
	defer close(e.done)
	defer e.stream.Close()
	defer h.notify(camera, "closed")
	log := h.Logger.With("camera", camera)
	// Jittered, so that the nodes of a cluster (and the cameras behind one
	// recorder) do not all reconnect in the same instant.
	retry := backoff.Backoff{Min: h.BackoffMin, Max: h.BackoffMax}
	for {
		h.notify(camera, "connecting")
		started := time.Now()
		actx, acancel := context.WithCancel(ctx)
		e.attempt.Store(&acancel)
		e.redial.Store(false)
		src, err := h.Sources(camera)
		if err == nil {
			err = src.Run(actx, &readyNotifier{Stream: e.stream, loss: e.loss, onReady: func() { h.notify(camera, "ready") }})
		}
		acancel()
		if ctx.Err() != nil {
			return
		}
		if e.redial.Swap(false) {
			log.Info("upstream reconnecting at once", "reason", "asked to (its source moved)")
			continue
		}
		if err == nil {
			err = errors.New("upstream ended")
		}
		e.lastErr.Store(&err)
		e.reconns.Add(1)
		h.notify(camera, "error")
		if errors.Is(err, ErrUnknownCamera) {
			log.Info("stream closed: camera no longer exists")
			h.mu.Lock()
			if h.streams[camera] == e {
				delete(h.streams, camera)
			}
			h.mu.Unlock()
			return
		}
		retry.ResetAfter(time.Since(started))
		delay := retry.Delay()
		log.Warn("upstream failed, reconnecting", "error", err, "in", delay)
		if retry.Sleep(ctx, delay) != nil {
			return
		}
	}
}

func (h *Hub) notify(camera, state string) {
	if h.OnUpstream != nil {
		h.OnUpstream(camera, state)
	}
}

// readyNotifier reports the upstream as ready when it describes itself, and
// its transport and losses to the camera's loss monitor.
type readyNotifier struct {
	*Stream
	loss    *lossMonitor
	onReady func()
}

var _ source.UpstreamHealth = (*readyNotifier)(nil)

func (r *readyNotifier) UpstreamTransport(proto string) { r.loss.setTransport(proto) }

func (r *readyNotifier) PacketsLost(n uint64) { r.loss.add(n, time.Now()) }

func (r *readyNotifier) SetDescription(desc *description.Session) error {
	if err := r.Stream.SetDescription(desc); err != nil {
		return err
	}
	r.onReady()
	return nil
}

// Stats is a snapshot of one stream for the API and metrics.
type Stats struct {
	Camera     string `json:"camera"`
	Users      int    `json:"users"`
	Readers    int    `json:"readers"`
	Reconnects uint64 `json:"reconnects"`
	Dropped    uint64 `json:"dropped"`
	LastError  string `json:"last_error,omitempty"`
	// Codecs are the upstream's media, "video/H264", "audio/MPEG-4 Audio",
	// as first described (empty until then).
	Codecs []string `json:"codecs,omitempty"`
	// Transport is the current upstream connection's ("UDP", "TCP"; empty
	// before the first plays).
	Transport string `json:"transport,omitempty"`
	// PacketsLost counts RTP packets the upstream lost, since the stream
	// opened; LossWarning says, for lossWarnEvery after it was judged, that
	// the loss is sustained and what to do.
	PacketsLost uint64 `json:"packets_lost"`
	LossWarning string `json:"loss_warning,omitempty"`
}

// codecs names the stream's media as "type/codec".
func (s *Stream) codecs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.medias))
	for _, m := range s.medias {
		out = append(out, string(m.typ)+"/"+m.codecName)
	}
	return out
}

// Stats returns a snapshot of every open stream.
func (h *Hub) Stats() []Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Stats, 0, len(h.streams))
	now := time.Now()
	for cam, e := range h.streams {
		st := Stats{Camera: cam, Users: e.users, Reconnects: e.reconns.Load()}
		select {
		case <-e.stream.Ready():
			st.Readers = e.stream.Full.Readers() + e.stream.Video.Readers()
			st.Dropped = e.stream.Full.Dropped() + e.stream.Video.Dropped()
		default:
		}
		if last := e.lastErr.Load(); last != nil {
			st.LastError = (*last).Error()
		}
		st.Codecs = e.stream.codecs()
		st.Transport = e.loss.transportName()
		st.PacketsLost, st.LossWarning = e.loss.current(now)
		out = append(out, st)
	}
	return out
}
