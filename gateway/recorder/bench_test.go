package recorder

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
)

// pacedSink feeds a stream from the demo source as fast as the recorder
// drains it (never letting its reader overflow) and stops after n packets.
type pacedSink struct {
	*stream.Stream
	reader *stream.Reader
	n      int
	sent   int
	done   context.CancelFunc
	ready  chan struct{}
	once   atomic.Bool
	// drained is signalled by the reader when its queue is empty.
	drained chan struct{}
	// attached is closed once the recorder reads the stream.
	attached chan struct{}
}

func (s *pacedSink) SetDescription(d *description.Session) error {
	if err := s.Stream.SetDescription(d); err != nil {
		return err
	}
	if s.once.CompareAndSwap(false, true) {
		close(s.ready)
	}
	return nil
}

func (s *pacedSink) WritePacketRTP(media int, pkt *rtp.Packet, ntp time.Time) {
	if s.sent >= s.n {
		s.done()
		return
	}
	if s.sent%256 == 255 {
		<-s.drained // the reader caught up (a stale signal leaves at most 512 queued)
	}
	s.Stream.WritePacketRTP(media, pkt, ntp)
	s.sent++
}

// BenchmarkRecordPath is the recording path of one camera per RTP packet:
// the stream's publish (both variants, GOP caches), the recorder's reader,
// depacketizing, and the archive writer to disk (1 s parts, 2 s segments),
// on the demo clip (H264 + Opus). ns/op and allocs/op are per packet.
func BenchmarkRecordPath(b *testing.B) {
	src, err := source.New(source.DemoURL, source.Options{Speed: 1e6})
	if err != nil {
		b.Fatal(err)
	}
	benchRecord(b, func(ctx context.Context, sink *pacedSink) error { return src.Run(ctx, sink) })
}

// BenchmarkRecordG711 is the same path for a G.711 A-law camera (20 ms
// packets of 160 samples): each packet is decoded to 16-bit PCM into the
// track's reused buffer, so the decode allocates nothing per packet.
func BenchmarkRecordG711(b *testing.B) {
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeAudio,
		Formats: []format.Format{&format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}}}}}
	benchRecord(b, func(ctx context.Context, sink *pacedSink) error {
		if err := sink.SetDescription(desc); err != nil {
			return err
		}
		<-sink.attached
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SSRC: 1}, Payload: make([]byte, 160)}
		for i := range pkt.Payload {
			pkt.Payload[i] = byte(i * 7)
		}
		t0 := time.Now()
		for i := 0; ctx.Err() == nil; i++ {
			pkt.SequenceNumber, pkt.Timestamp = uint16(i), uint32(i*160)
			sink.WritePacketRTP(0, &pkt, t0.Add(time.Duration(i)*20*time.Millisecond))
		}
		return nil
	})
}

// benchRecord records what feed writes into a stream until b.N packets
// went through the recorder; ns/op and allocs/op are per packet.
func benchRecord(b *testing.B, feed func(ctx context.Context, sink *pacedSink) error) {
	store := &archive.Store{Dir: b.TempDir(), SegmentDuration: 2 * time.Second, PartDuration: time.Second, Authorizer: &fakeAuthorizer{}}
	if err := store.Initialize(); err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	st := stream.New("cam1")
	r := stream.NewReader(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &pacedSink{Stream: st, reader: r, n: b.N, done: cancel, ready: make(chan struct{}), drained: make(chan struct{}, 1), attached: make(chan struct{})}
	srcDone := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	go func() { srcDone <- feed(ctx, sink) }()
	<-sink.ready
	rec, err := newSession(store, "cam1", st.Full.Desc, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Full.AddReader(r); err != nil {
		b.Fatal(err)
	}
	close(sink.attached)
	err = r.Run(ctx, func(batch []*stream.Packet) error {
		for _, p := range batch {
			if err := rec.write(p); err != nil {
				return err
			}
		}
		if r.Queued() == len(batch) {
			select {
			case sink.drained <- struct{}{}:
			default:
			}
		}
		return nil
	})
	<-srcDone
	b.StopTimer()
	// Wall time includes waiting for each segment's fsync; CPU time is the cost.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/pkt")
	if err != nil && !errors.Is(err, context.Canceled) {
		b.Fatal(err)
	}
	rec.close()
	r.Close()
	st.Close()
	if d := r.Dropped(); d > 0 {
		b.Fatalf("%d packets dropped", d)
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
