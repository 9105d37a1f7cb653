package webrtc

import (
	"testing"
	"time"

	"github.com/camgate/camgate/internal/poll"
)

// TestViewerSurvivesStreamReset: when the hub replaces the camera's stream
// (its source changed), viewers keep their connection and see continuous
// sequence numbers and timestamps across the change.
func TestViewerSurvivesStreamReset(t *testing.T) {
	h := newHarness(t)
	v := h.play(t, "bob")
	tr := v.nextTrack(t)
	var lastSeq uint16
	var lastTS uint32
	read := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			_ = tr.SetReadDeadline(time.Now().Add(5 * time.Second))
			p, _, err := tr.ReadRTP()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if lastSeq != 0 || lastTS != 0 {
				if p.SequenceNumber != lastSeq+1 {
					t.Fatalf("sequence number %d after %d", p.SequenceNumber, lastSeq)
				}
				if d := p.Timestamp - lastTS; d > 2*90000 {
					t.Fatalf("timestamp jumped by %d", d)
				}
			}
			lastSeq, lastTS = p.SequenceNumber, p.Timestamp
		}
	}
	read(20)
	h.hub.Reset("cam1")
	read(150) // more than a second of video from the new stream
	if h.reg.Len() != 1 {
		t.Fatalf("registry has %d sessions", h.reg.Len())
	}
}

// TestCameraGoneClosesViewers: when the camera's stream ends and the
// camera no longer exists, its viewers are closed.
func TestCameraGoneClosesViewers(t *testing.T) {
	h := newHarness(t)
	v := h.play(t, "alice")
	v.nextTrack(t)
	h.gone.Store(true)
	h.hub.Reset("cam1")
	v.waitEnded(t)
	poll.Until(t, "the session to end", func() bool { return h.reg.Len() == 0 })
}
