package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/gateway/transcode"
	"github.com/camgate/camgate/internal/backoff"
)

// errMuxerStopped: the muxer was stopped while a request waited for it.
var errMuxerStopped = errors.New("hls muxer stopped")

// camMuxer is the HLS muxer of one camera variant: one stream reader, one
// depacketizer and one gohlslib Muxer shared by every HLS session of that
// camera and variant. It starts with the first session and stops when the
// last one ends (Server.mu guards refs). When the camera's stream ends (the
// hub closed it) it re-acquires and starts a new gohlslib Muxer; players
// re-read the playlist and continue.
type camMuxer struct {
	srv     *Server
	camera  string
	variant string
	log     *slog.Logger

	refs   int // guarded by srv.mu
	cancel context.CancelFunc
	done   chan struct{}

	// pending counts blocking muxer calls still running, including ones
	// whose request gave up (see adapter.go).
	pending atomic.Int32
	// files serves finished media files of the current gohlslib Muxer to
	// every viewer from memory.
	files fileCache

	mu      sync.Mutex // guards cur, err, changed, stopped, dropped
	cur     *gohlslib.Muxer
	err     error
	changed chan struct{} // closed and replaced at every change of cur/err
	stopped bool
	// dropped names the camera's audio codecs HLS players cannot decode,
	// left out of the current muxer (served as a header on playlists).
	dropped string

	// unplayable: the last start failed with ErrNoPlayableTrack (owned by
	// run's goroutine; it keeps the WARN to one per camera muxer).
	unplayable bool
	// warnedAudio: the dropped-audio WARN was logged (run's goroutine).
	warnedAudio string
	// warnedTranscode: the transcoder-failure WARN was logged.
	warnedTranscode string
}

// setDroppedAudio records (and, once per camera muxer, warns about) audio
// left out because HLS players cannot decode it.
func (c *camMuxer) setDroppedAudio(codecs []string) {
	d := strings.Join(codecs, ", ")
	if d != "" && d != c.warnedAudio {
		c.log.Warn("hls serves this camera without its audio: players cannot decode it", "audio", d)
		c.warnedAudio = d
	}
	c.mu.Lock()
	c.dropped = d
	c.mu.Unlock()
}

// transcoder gives newTracks its G.711 transcoders, or nil when the server
// does not transcode.
func (c *camMuxer) transcoder() func(*format.G711) (*transcode.Audio, error) {
	if !c.srv.TranscodeAudio {
		return nil
	}
	return func(f *format.G711) (*transcode.Audio, error) {
		tc := &transcode.Audio{
			In:     transcode.Input{G711: &transcode.G711{MULaw: f.MULaw, SampleRate: f.SampleRate, Channels: f.ChannelCount}},
			Out:    transcode.OutAAC,
			FFmpeg: c.srv.FFmpeg, Logger: c.log,
		}
		if err := tc.Start(); err != nil {
			if c.warnedTranscode == "" {
				c.log.Warn("hls cannot transcode this camera's audio", "error", err)
				c.warnedTranscode = err.Error()
			}
			return nil, err
		}
		return tc, nil
	}
}

// droppedAudio is what setDroppedAudio recorded ("" when nothing was left out).
func (c *camMuxer) droppedAudio() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

func newCamMuxer(srv *Server, camera, variant string) *camMuxer {
	return &camMuxer{
		srv: srv, camera: camera, variant: variant,
		log:     srv.Logger.With("camera", camera, "variant", variant),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
}

func (c *camMuxer) start(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	c.cancel = cancel
	c.srv.wg.Add(1)
	go func() {
		defer c.srv.wg.Done()
		defer close(c.done)
		c.run(ctx)
	}()
}

// stop ends the muxer; requests waiting on it are released.
func (c *camMuxer) stop() {
	c.cancel()
	c.mu.Lock()
	c.stopped = true
	c.notifyLocked()
	c.mu.Unlock()
}

func (c *camMuxer) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *camMuxer) set(m *gohlslib.Muxer, err error) {
	c.mu.Lock()
	c.cur, c.err = m, err
	c.notifyLocked()
	c.mu.Unlock()
}

// wait returns the running gohlslib Muxer, waiting up to timeout for one;
// it returns the last start error instead when starting failed.
func (c *camMuxer) wait(timeout time.Duration) (*gohlslib.Muxer, error) {
	var t *time.Timer
	for {
		c.mu.Lock()
		m, err, ch, stopped := c.cur, c.err, c.changed, c.stopped
		c.mu.Unlock()
		switch {
		case stopped:
			return nil, errMuxerStopped
		case m != nil:
			return m, nil
		case err != nil:
			return nil, err
		}
		if t == nil {
			t = time.NewTimer(timeout)
			defer t.Stop()
		}
		select {
		case <-ch:
		case <-t.C:
			return nil, errBlockTimeout
		}
	}
}

// run keeps a muxer going until ctx ends, re-acquiring the camera's stream
// when it ends and retrying with backoff when it cannot be had.
func (c *camMuxer) run(ctx context.Context) {
	retry := backoff.Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second}
	for {
		started := time.Now()
		err := c.runOnce(ctx)
		if ctx.Err() != nil {
			c.set(nil, errMuxerStopped)
			return
		}
		if errors.Is(err, stream.ErrClosed) {
			retry.ResetAfter(time.Since(started)) // a stream that ran a while and ended: restart at once
		}
		c.set(nil, err)
		delay := retry.Delay()
		if errors.Is(err, ErrNoPlayableTrack) {
			// The camera's codec, not an outage: say it once, and look
			// again (the camera may be reconfigured) at the slowest pace.
			delay = retry.Max
			if !c.unplayable {
				c.log.Warn("hls cannot serve this camera", "error", err)
			}
			c.unplayable = true
		} else {
			c.unplayable = false
			c.log.Warn("hls muxer stopped, restarting", "error", err, "in", delay)
		}
		if retry.Sleep(ctx, delay) != nil {
			c.set(nil, errMuxerStopped)
			return
		}
		// Requests wait for the next attempt rather than failing on the old error.
		c.set(nil, nil)
	}
}

// runOnce feeds one gohlslib Muxer from one stream until the stream ends.
func (c *camMuxer) runOnce(ctx context.Context) error {
	st, release, err := c.srv.Hub.Acquire(ctx, c.camera)
	if err != nil {
		return fmt.Errorf("acquire stream: %w", err)
	}
	defer release()
	v := st.Variant(c.variant)
	plan, err := newTracks(v.Desc, c.transcoder())
	if err != nil {
		return err
	}
	defer plan.close()
	tracks := plan.tracks
	c.setDroppedAudio(plan.droppedAudio)
	if len(plan.transcoded) > 0 {
		c.log.Info("hls transcodes this camera's audio to AAC", "audio", strings.Join(plan.transcoded, ", "))
	}
	el := &encodeLog{log: c.log}
	m := &gohlslib.Muxer{
		Tracks:             tracks,
		Variant:            gohlslib.MuxerVariantLowLatency,
		SegmentCount:       c.srv.SegmentCount,
		SegmentMinDuration: c.srv.SegmentDuration,
		PartMinDuration:    c.srv.PartDuration,
		OnEncodeError:      el.report,
	}
	if err := m.Start(); err != nil {
		return fmt.Errorf("start hls muxer: %w", err)
	}
	defer m.Close()
	r := stream.NewReader(c.srv.QueueSize)
	if err := v.AddReader(r); err != nil {
		return err
	}
	defer r.Close()
	c.unplayable = false
	c.set(m, nil)
	defer c.set(nil, nil)
	c.log.Info("hls muxer started", "tracks", len(tracks))

	f := &feeder{muxer: m, tracks: plan.feed, onErr: m.OnEncodeError}
	err = r.Run(ctx, func(batch []*stream.Packet) error {
		f.writeBatch(batch)
		return nil
	})
	c.log.Info("hls muxer ended", "error", err, "dropped", r.Dropped(), "encode_errors", el.errors,
		"part_target_changes", el.partTargetChanges)
	return err
}
