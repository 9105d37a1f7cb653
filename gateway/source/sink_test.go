package source

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// recordingSink keeps copies of everything a source hands over, the way the
// hub would, and wakes waiters on every write.
type recordingSink struct {
	mu      sync.Mutex
	descs   []*description.Session
	packets []recordedPacket
	wake    chan struct{}
}

type recordedPacket struct {
	media int
	pkt   rtp.Packet // deep copy
	ntp   time.Time
}

func newRecordingSink() *recordingSink {
	return &recordingSink{wake: make(chan struct{}, 1)}
}

func (s *recordingSink) SetDescription(desc *description.Session) error {
	s.mu.Lock()
	s.descs = append(s.descs, desc)
	s.mu.Unlock()
	s.notify()
	return nil
}

func (s *recordingSink) WritePacketRTP(media int, pkt *rtp.Packet, ntp time.Time) {
	c := *pkt.Clone()
	s.mu.Lock()
	s.packets = append(s.packets, recordedPacket{media: media, pkt: c, ntp: ntp})
	s.mu.Unlock()
	s.notify()
}

func (s *recordingSink) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *recordingSink) snapshot() ([]*description.Session, []recordedPacket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.descs), slices.Clone(s.packets)
}

// waitFor polls cond on every write until it holds or the deadline passes.
func (s *recordingSink) waitFor(t *testing.T, within time.Duration, what string, cond func([]*description.Session, []recordedPacket) bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		if cond(s.snapshot()) {
			return
		}
		select {
		case <-s.wake:
		case <-deadline.C:
			_, pkts := s.snapshot()
			t.Fatalf("timed out after %v waiting for %s (%d packets recorded)", within, what, len(pkts))
		}
	}
}

// countMedia counts packets per media index.
func countMedia(pkts []recordedPacket) map[int]int {
	n := map[int]int{}
	for _, p := range pkts {
		n[p.media]++
	}
	return n
}

// decodedAU is one H264 access unit as a player would reassemble it.
type decodedAU struct {
	ts  uint32
	au  [][]byte
	idr bool
}

// decodeH264 reassembles the recorded packets of media into access units.
func decodeH264(t *testing.T, forma *format.H264, pkts []recordedPacket, media int) []decodedAU {
	t.Helper()
	dec, err := forma.CreateDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var out []decodedAU
	for _, p := range pkts {
		if p.media != media {
			continue
		}
		au, err := dec.Decode(&p.pkt)
		if err != nil {
			continue // needs more packets, or a partial first AU
		}
		_, idr := withParameterSets(au, nil, nil)
		out = append(out, decodedAU{ts: p.pkt.Timestamp, au: au, idr: idr})
	}
	return out
}

// mediaFormats returns the format of each media of desc.
func mediaFormats(desc *description.Session) []format.Format {
	var out []format.Format
	for _, m := range desc.Medias {
		out = append(out, m.Formats[0])
	}
	return out
}
