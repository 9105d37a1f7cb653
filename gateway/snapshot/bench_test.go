package snapshot

import (
	"context"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
)

// BenchmarkLiveCached is the path a crowd of viewers takes: the keyframe
// was decoded already, so a snapshot is a stream acquire, a look at the GOP
// cache and a map hit.
func BenchmarkLiveCached(b *testing.B) {
	hub := newFixedHub(b, encodedKeyframe(b, 640, 360))
	s := newService(b, hub, newFFmpeg(b), nil)
	ctx := context.Background()
	if _, err := s.Live(ctx, Camera{ID: "cam1"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Live(ctx, Camera{ID: "cam1"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode is one uncached snapshot: depacketize the keyframe and
// decode it with ffmpeg. cpu-ms/op is the decoder process's CPU time (user
// + system), the cost the cache saves per extra viewer.
func BenchmarkDecode(b *testing.B) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"640x360", 640, 360}, {"1920x1080", 1920, 1080}} {
		b.Run(size.name, func(b *testing.B) {
			hub := newFixedHub(b, encodedKeyframe(b, size.w, size.h))
			f := newFFmpeg(b)
			ctx := context.Background()
			pkts := hub.st.Video.Keyframe(nil)
			defer releaseAll(pkts)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				kf, err := keyframeOf(hub.st.Video, pkts)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Decode(ctx, kf); err != nil {
					b.Fatal(err)
				}
			}
			n, cpu := f.Stats()
			b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(n), "cpu-ms/op")
		})
	}
}

// BenchmarkLiveCachedHub is the cached path through a real stream hub
// pulling the demo camera: Acquire and release are part of each snapshot.
// A new keyframe every second costs one decode, outside the timer's
// meaning but inside its time, so compare it with BenchmarkLiveCached.
func BenchmarkLiveCachedHub(b *testing.B) {
	hub := &stream.Hub{Sources: func(string) (source.Source, error) { return source.New("builtin:demo", source.Options{}) }}
	if err := hub.Initialize(); err != nil {
		b.Fatal(err)
	}
	defer hub.Close()
	dec := &countingDecoder{Decoder: newFFmpeg(b)}
	s := newService(b, hub, dec, nil)
	ctx := context.Background()
	if _, err := s.Live(ctx, Camera{ID: "demo"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Live(ctx, Camera{ID: "demo"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(dec.n.Load()-1), "decodes")
}
