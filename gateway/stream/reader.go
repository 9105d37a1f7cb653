package stream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by Reader.Run when the reader or its stream is closed.
var ErrClosed = errors.New("stream closed")

// maxBatch bounds how many packets one Run callback gets (one writev for an
// RTSP viewer): big enough to amortize the syscall, small enough to keep each
// reader's scratch space (iovecs, headers) to a few KiB.
const maxBatch = 256

// DefaultQueueSize is the default number of packets a reader may have queued
// (including the batch being written) before it starts dropping.
const DefaultQueueSize = 1024

// Reader is one consumer of a variant: an RTSP session, an HLS muxer, a
// WebRTC track, the recorder. The publisher pushes into a bounded
// single-producer single-consumer ring and never waits for the reader; a
// reader that falls behind drops packets (counted) and resumes at the next
// keyframe, so it never stalls the publisher or the other readers.
type Reader struct {
	ring []*Packet
	mask uint64
	// head is written by the publisher (with the variant lock held), tail
	// by the consumer; each side only reads the other's index atomically.
	head atomic.Uint64
	tail atomic.Uint64

	notify    chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// waitKey is publisher state (variant lock): after an overflow, or
	// when a reader joins a keyed variant with no GOP cached, packets are
	// skipped until the next keyframe.
	waitKey bool
	lagging bool // waitKey because of an overflow: skipped packets count as dropped
	dropped atomic.Uint64

	batch   []*Packet
	variant atomic.Pointer[Variant]
	// tolerant: this reader does not need packets the moment they arrive
	// (the recorder); see Stream.LatencyTolerant.
	tolerant bool
	// pace, when set, bounds Run's output to a byte rate (pacer.go).
	pace *pacer
	// live: AddReader hands over neither the GOP nor waits for a keyframe.
	live bool
}

// SetLatencyTolerant marks a reader that may get its packets in bursts
// (every ~200 ms) without harm, such as the recorder: a stream whose
// readers are all tolerant lets its upstream gather reads. Call it before
// AddReader.
func (r *Reader) SetLatencyTolerant() { r.tolerant = true }

// SetPaced makes Run hand packets over no faster than a byte rate a
// viewer's UDP socket absorbs (a few times the camera's bitrate, see
// pacer.go), so that neither a joining viewer's GOP replay nor a camera's
// keyframe burst overflows it; the first picture still starts at once.
// For readers that write to UDP. Call it before AddReader.
func (r *Reader) SetPaced() { r.pace = &pacer{} }

// SetLiveOnly makes the reader start at the live edge, on whatever packet
// comes next: no cached GOP, no wait for a keyframe. For a reader that feeds
// viewers who each get their own start (the RTSP UDP pump: every UDP viewer
// gets its own GOP replay, then joins it). Call it before AddReader.
func (r *Reader) SetLiveOnly() { r.live = true }

// NewReader returns a reader with a queue of at least size packets
// (rounded up to a power of two; DefaultQueueSize when size <= 0).
func NewReader(size int) *Reader {
	if size <= 0 {
		size = DefaultQueueSize
	}
	n := 1
	for n < size {
		n <<= 1
	}
	return &Reader{
		ring:   make([]*Packet, n),
		mask:   uint64(n - 1),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// Dropped returns how many packets this reader lost because it was too slow.
func (r *Reader) Dropped() uint64 { return r.dropped.Load() }

// Queued returns how many packets are waiting (including the batch being written).
func (r *Reader) Queued() int { return int(r.head.Load() - r.tail.Load()) }

// push is called by the publisher with the variant lock held. It reports
// whether the packet was lost to this reader's slowness.
func (r *Reader) push(p *Packet, keyed bool) (dropped bool) {
	if r.waitKey {
		if !p.Key {
			if r.lagging {
				r.dropped.Add(1)
			}
			return r.lagging
		}
		r.waitKey, r.lagging = false, false
	}
	h := r.head.Load()
	if h-r.tail.Load() > r.mask {
		r.dropped.Add(1)
		r.waitKey, r.lagging = keyed, keyed
		return true
	}
	p.retain()
	r.ring[h&r.mask] = p
	r.head.Store(h + 1)
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return false
}

// Run hands queued packets to fn in batches, in order, until ctx is done,
// the reader or its stream is closed, or fn fails. Packets are valid only
// during the call: Run releases them when fn returns. One goroutine only.
func (r *Reader) Run(ctx context.Context, fn func(batch []*Packet) error) error {
	defer r.drain()
	for {
		select {
		case <-r.notify:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return ErrClosed
		}
		for {
			t, h := r.tail.Load(), r.head.Load()
			if t == h {
				break
			}
			h = min(h, t+maxBatch)
			if r.pace != nil {
				var err error
				if h, err = r.pace.admit(ctx, r, t, h); err != nil {
					return err
				}
			}
			batch := r.batch[:0]
			for i := t; i < h; i++ {
				batch = append(batch, r.ring[i&r.mask])
				r.ring[i&r.mask] = nil
			}
			r.batch = batch
			err := fn(batch)
			for i, p := range batch {
				p.Release()
				batch[i] = nil
			}
			r.tail.Store(h)
			if err != nil {
				return err
			}
		}
	}
}

// drain releases what is still queued when Run stops.
func (r *Reader) drain() {
	t, h := r.tail.Load(), r.head.Load()
	for i := t; i < h; i++ {
		if p := r.ring[i&r.mask]; p != nil {
			p.Release()
			r.ring[i&r.mask] = nil
		}
	}
	r.tail.Store(h)
}

// Close detaches the reader from its variant and stops Run. Safe to call
// more than once and from any goroutine.
func (r *Reader) Close() {
	if v := r.variant.Load(); v != nil {
		v.RemoveReader(r)
	}
	r.stop()
}

func (r *Reader) stop() { r.closeOnce.Do(func() { close(r.done) }) }

// Done is closed when the reader is closed or its stream ends.
func (r *Reader) Done() <-chan struct{} { return r.done }
