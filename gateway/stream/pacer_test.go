package stream

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestPacedReaderStartsAtOnceThenKeepsToTheRate: a paced reader joining a
// GOP of 360 KB gets its keyframe at once, then the rest no faster than
// the pace allows (the floor rate: this stream's bitrate is not measured
// yet), and not much slower either. synctest's clock makes the timing
// exact.
func TestPacedReaderStartsAtOnceThenKeepsToTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("cam1")
		if err := s.SetDescription(testDesc()); err != nil {
			t.Fatal(err)
		}
		frag := make([]byte, 1200)
		frag[0] = 0x41
		write(s, 0, idr, 0)
		const n = 300
		for i := 1; i < n; i++ {
			write(s, 0, frag, 0)
		}
		total := len(idr) + rtpHeaderSize + (n-1)*(len(frag)+rtpHeaderSize)

		r := NewReader(1024)
		r.SetPaced()
		if err := s.Video.AddReader(r); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		var firstAt, doneAt time.Duration
		sent, firstKey := 0, false
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = r.Run(ctx, func(batch []*Packet) error {
				if sent == 0 {
					firstAt, firstKey = time.Since(start), batch[0].Key
				}
				for _, p := range batch {
					sent += len(p.Buf)
				}
				if sent >= total {
					doneAt = time.Since(start)
					cancel()
				}
				return nil
			})
		}()
		<-done
		if firstAt != 0 || !firstKey {
			t.Fatalf("first batch after %v, key %v: want the keyframe at once", firstAt, firstKey)
		}
		least := time.Duration(float64(total-paceBurst) / paceFloor * float64(time.Second))
		most := least + time.Duration(float64(paceChunk)/paceFloor*float64(time.Second))
		if doneAt < least || doneAt > most {
			t.Fatalf("%d bytes took %v, want %v to %v at %d bytes/s after a %d byte burst", total, doneAt, least, most, paceFloor, paceBurst)
		}
		r.Close()
		s.Close()
	})
}
