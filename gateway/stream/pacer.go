package stream

import (
	"context"
	"time"
)

// Pacing of a reader that sends over UDP (SetPaced). A joining reader gets
// the cached GOP at once, and a camera's keyframe arrives as a few hundred
// packets back to back: written to a UDP socket as fast as they come, they
// overflow the viewer's receive buffer (Linux's default is 208 KiB, about
// 90 datagrams) and the viewer loses the start of its first picture. A
// paced reader hands its packets over at most at a byte rate: paceFactor
// times the camera's bitrate (measured over its last GOP), at least
// paceFloor, and in bursts of at most paceBurst. The first paceBurst goes
// at once, so the keyframe starts immediately; a GOP replay catches up with
// the live edge in GOP/(paceFactor-1); live packets queue behind it.
const (
	paceFactor = 3
	paceFloor  = 2 << 20  // bytes/s (16 Mbit/s): a quick first picture at any bitrate
	paceBurst  = 32 << 10 // bytes: ~23 datagrams; a 208 KiB buffer holds 92
	paceChunk  = 16 << 10 // bytes: once out of budget, wait until this much is due (fewer wakeups)
)

// pacer is a token bucket of bytes, owned by the reader's Run goroutine.
type pacer struct {
	tokens float64
	last   time.Time
	timer  *time.Timer
}

// paceRate returns the bytes per second a paced reader of v may get.
func (v *Variant) paceRate() float64 {
	return max(paceFloor, paceFactor*float64(v.byteRate.Load()))
}

// admit returns how many of the packets queued from t to h (exclusive) may
// go now, at least one, waiting for budget when there is none. It returns
// an error when ctx is done or the reader closed while waiting.
func (p *pacer) admit(ctx context.Context, r *Reader, t, h uint64) (uint64, error) {
	rate := float64(paceFloor)
	if v := r.variant.Load(); v != nil {
		rate = v.paceRate()
	}
	now := time.Now()
	if p.last.IsZero() {
		p.tokens = paceBurst
	} else {
		p.tokens = min(paceBurst, p.tokens+now.Sub(p.last).Seconds()*rate)
	}
	p.last = now
	if p.tokens <= 0 {
		wait := time.Duration((paceChunk - p.tokens) / rate * float64(time.Second))
		if p.timer == nil {
			p.timer = time.NewTimer(wait)
		} else {
			p.timer.Reset(wait)
		}
		select {
		case <-p.timer.C:
		case <-ctx.Done():
			p.timer.Stop()
			return t, ctx.Err()
		case <-r.done:
			p.timer.Stop()
			return t, ErrClosed
		}
		now = time.Now()
		p.tokens += now.Sub(p.last).Seconds() * rate
		p.last = now
	}
	n := t
	for n < h && (n == t || p.tokens > 0) {
		p.tokens -= float64(len(r.ring[n&r.mask].Buf))
		n++
	}
	return n, nil
}
