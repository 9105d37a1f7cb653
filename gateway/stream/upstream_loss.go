package stream

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Sustained-loss rule: a window is lossy when at least lossyPerMille of
// its packets were lost (and at least lossyMin, so that one lost packet in
// a quiet window is not a trend); lossyStreak lossy windows in a row are
// sustained loss. A camera whose UDP path loses 0.1 % of its packets shows
// a smeared frame every few seconds: worth a word to the operator.
const (
	lossyPerMille = 1
	lossyMin      = 5
	lossyStreak   = 3
	// lossWarnEvery bounds the sustained-loss warning (log and API) to one
	// per camera per this period.
	lossWarnEvery = 10 * time.Minute
)

// lossMonitor counts one camera's upstream packet loss (across its
// reconnects) and judges whether it is sustained. It lives as long as the
// camera's stream; its mutex guards the window state.
type lossMonitor struct {
	log      *slog.Logger
	window   time.Duration
	received *atomic.Uint64 // the stream's packet counter

	lost      atomic.Uint64
	transport atomic.Pointer[string]

	mu        sync.Mutex // guards the fields below
	winStart  time.Time
	winLost   uint64
	winRecv   uint64 // received when the window started
	streak    int
	warning   string
	warningAt time.Time
	warnedAt  time.Time
}

func (m *lossMonitor) setTransport(proto string) { m.transport.Store(&proto) }

func (m *lossMonitor) transportName() string {
	if p := m.transport.Load(); p != nil {
		return *p
	}
	return ""
}

// add counts n lost packets and closes the window when it is over. Windows
// are judged lazily, at the next loss: a stretch without loss is one clean
// window and ends a streak.
func (m *lossMonitor) add(n uint64, now time.Time) {
	m.lost.Add(n)
	m.mu.Lock()
	defer m.mu.Unlock()
	recv := m.received.Load()
	if m.winStart.IsZero() {
		m.winStart, m.winRecv = now, recv
	}
	m.winLost += n
	age := now.Sub(m.winStart)
	if age < m.window {
		return
	}
	got := recv - m.winRecv
	total := got + m.winLost
	lossy := m.winLost >= lossyMin && m.winLost*1000 >= total*lossyPerMille
	switch {
	case !lossy || age >= 2*m.window: // a quiet stretch lay between
		m.streak = 0
		if lossy {
			m.streak = 1
		}
	default:
		m.streak++
	}
	lostInWin := m.winLost
	m.winStart, m.winRecv, m.winLost = now, recv, 0
	if m.streak < lossyStreak {
		return
	}
	proto := m.transportName()
	advice := "the camera's own network loses them; check its link and bitrate"
	if proto != "TCP" {
		advice = "set `transport: tcp` on this camera (or raise rtsp.upstream_udp_read_buffer)"
	}
	m.warning = fmt.Sprintf("sustained upstream packet loss over %s (%d of %d packets in the last %s): %s",
		proto, lostInWin, total, age.Round(time.Second), advice)
	m.warningAt = now
	if !m.warnedAt.IsZero() && now.Sub(m.warnedAt) < lossWarnEvery {
		return
	}
	m.warnedAt = now
	m.log.Warn("sustained upstream packet loss", "transport", proto, "lost", lostInWin, "packets", total,
		"in", age.Round(time.Second), "advice", advice)
}

// current returns the total lost and the sustained-loss warning, if one
// was judged within lossWarnEvery.
func (m *lossMonitor) current(now time.Time) (lost uint64, warning string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.warning != "" && now.Sub(m.warningAt) < lossWarnEvery {
		warning = m.warning
	}
	return m.lost.Load(), warning
}
