// Package recorder records cameras with `record: true` into the archive:
// for each one it holds the camera's stream from the hub, reads its full
// variant, depacketizes RTP into access units and feeds archive.Writer. It
// re-acquires the stream when it ends (upstream gone, camera reset) and
// stops on Stop or Close. A camera none of whose tracks the archive can
// store is not re-acquired on a timer: it waits in StateCannotRecord for
// Retry (its device changed) or Stop.
package recorder

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/backoff"
)

// Hub is what the recorder needs of the stream hub.
type Hub interface {
	Acquire(ctx context.Context, camera string) (*stream.Stream, func(), error)
}

// Manager runs one recording per started camera.
type Manager struct {
	// Hub gives the cameras' streams. Required.
	Hub Hub
	// Archive stores the segments. Required.
	Archive *archive.Store
	// RetryMin and RetryMax bound the delay before re-acquiring a stream
	// that failed (default 500 ms, 30 s).
	RetryMin, RetryMax time.Duration
	// QueueSize is the reader queue in packets (default stream.DefaultQueueSize).
	QueueSize int
	// Logger (default: discard).
	Logger *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex // guards cams
	cams map[string]*camRecording
}

type camRecording struct {
	cancel context.CancelFunc
	done   chan struct{}
	retry  chan struct{} // wakes a recording in StateCannotRecord

	mu    sync.Mutex // guards state
	state State
}

// The states of a recording.
const (
	StateStarting     = "starting"      // acquiring the camera's stream
	StateRecording    = "recording"     // its tracks go to the archive
	StateRetrying     = "retrying"      // the stream failed or ended; acquired again after a backoff
	StateCannotRecord = "cannot_record" // no track the archive can store; not retried until Retry
)

// State is what a camera's recording does now.
type State struct {
	State string
	// Reason is why it is not recording: the error while retrying, the
	// codecs it cannot store in StateCannotRecord.
	Reason string
	// NotRecorded names the camera's media left out of the recording
	// ("audio/G722"), while recording.
	NotRecorded []string
}

func (c *camRecording) set(st State) {
	c.mu.Lock()
	c.state = st
	c.mu.Unlock()
}

// Initialize applies defaults.
func (m *Manager) Initialize() error {
	if m.Hub == nil || m.Archive == nil {
		return errors.New("recorder: Hub and Archive are required")
	}
	if m.RetryMin <= 0 {
		m.RetryMin = 500 * time.Millisecond
	}
	if m.RetryMax <= 0 {
		m.RetryMax = 30 * time.Second
	}
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.cams = make(map[string]*camRecording)
	return nil
}

// Close stops every recording; each closes its current segment.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

// Start records camera until Stop (no-op if it is already recording).
func (m *Manager) Start(camera string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil || m.cams[camera] != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	c := &camRecording{cancel: cancel, done: make(chan struct{}), retry: make(chan struct{}, 1), state: State{State: StateStarting}}
	m.cams[camera] = c
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(c.done)
		m.run(ctx, camera, c)
	}()
}

// Stop ends camera's recording and waits until its last segment is indexed.
func (m *Manager) Stop(camera string) {
	m.mu.Lock()
	c := m.cams[camera]
	delete(m.cams, camera)
	m.mu.Unlock()
	if c != nil {
		c.cancel()
		<-c.done
	}
}

// Retry makes recordings of cameras in StateCannotRecord acquire their
// stream again (their device changed: a new source may send other codecs);
// other recordings are not disturbed.
func (m *Manager) Retry(cameras ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cam := range cameras {
		if c := m.cams[cam]; c != nil {
			select {
			case c.retry <- struct{}{}:
			default:
			}
		}
	}
}

// States returns the state of every started recording, by camera.
func (m *Manager) States() map[string]State {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]State, len(m.cams))
	for cam, c := range m.cams {
		c.mu.Lock()
		out[cam] = c.state
		c.mu.Unlock()
	}
	return out
}

// Recording lists the cameras being recorded.
func (m *Manager) Recording() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.cams))
	for c := range m.cams {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// run acquires the stream and records it, again after every end, with
// backoff after failures, until ctx is done. A stream it cannot record
// is released and waits for Retry: acquiring it again would dial the
// camera for the same codecs.
func (m *Manager) run(ctx context.Context, camera string, c *camRecording) {
	log := m.Logger.With("camera", camera)
	retry := backoff.Backoff{Min: m.RetryMin, Max: m.RetryMax}
	var warned string // the last "not recorded" or "cannot record" warning, given once
	for ctx.Err() == nil {
		st, release, err := m.Hub.Acquire(ctx, camera)
		if err == nil {
			started := time.Now()
			err = m.record(ctx, camera, st.Full, log, c, &warned)
			release()
			retry.ResetAfter(time.Since(started))
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrCannotRecord) {
			c.set(State{State: StateCannotRecord, Reason: err.Error()})
			if msg := err.Error(); msg != warned {
				warned = msg
				log.Warn("camera cannot be recorded; not retried until its device changes", "reason", msg)
			}
			select {
			case <-ctx.Done():
				return
			case <-c.retry:
				continue
			}
		}
		c.set(State{State: StateRetrying, Reason: errText(err)})
		delay := retry.Delay()
		log.Warn("recording interrupted, retrying", "error", err, "in", delay)
		if retry.Sleep(ctx, delay) != nil {
			return
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "the stream ended"
	}
	return err.Error()
}

// record reads one variant into the archive until the stream ends or ctx is done.
func (m *Manager) record(ctx context.Context, camera string, v *stream.Variant, log *slog.Logger, c *camRecording, warned *string) error {
	rec, err := newSession(m.Archive, camera, v.Desc, log)
	if err != nil {
		return err
	}
	defer rec.close()
	c.set(State{State: StateRecording, NotRecorded: rec.skipped})
	if msg := strings.Join(rec.skipped, ", "); msg != *warned {
		*warned = msg
		if msg != "" {
			log.Warn("recording without tracks the archive cannot store", "not_recorded", msg)
		}
	}
	log.Info("recording")
	r := stream.NewReader(m.QueueSize)
	// A recording does not mind packets arriving ~200 ms late, in bursts:
	// while nobody watches, the upstream reads them in fewer, bigger reads.
	r.SetLatencyTolerant()
	if err := v.AddReader(r); err != nil {
		return err
	}
	defer r.Close()
	err = r.Run(ctx, func(batch []*stream.Packet) error {
		for _, p := range batch {
			if err := rec.write(p); err != nil {
				return err
			}
		}
		return nil
	})
	if dropped := r.Dropped(); dropped > 0 {
		log.Warn("recorder fell behind, packets dropped", "dropped", dropped)
	}
	return err
}
