package archive

import (
	"context"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/redistest"
)

// BenchmarkSharedIndexDay: what a 24 h playlist reads from the shared
// index, a day of 10 s segments (8640) recorded by two nodes, over
// loopback Redis.
func BenchmarkSharedIndexDay(b *testing.B) {
	r := redistest.Start(b, redistest.Options{NoPersistence: true})
	clock := &fakeClock{now: t0.Add(25 * time.Hour)}
	ctx := context.Background()
	idx := map[string]*RedisIndex{}
	for _, n := range []string{"a", "b", "c"} {
		idx[n] = &RedisIndex{Client: r.Client(), Node: n, TTL: 48 * time.Hour, Now: clock.Now}
		if err := idx[n].Initialize(); err != nil {
			b.Fatal(err)
		}
	}
	var segs [2][]Segment
	for i := range 8640 {
		st := t0.Add(time.Duration(i) * 10 * time.Second)
		segs[i*2/8640] = append(segs[i*2/8640], Segment{Start: st, Duration: 10 * time.Second, Size: 2 << 20, tracks: 0xfeed})
	}
	if err := idx["a"].Publish(ctx, "cam1", segs[0]); err != nil {
		b.Fatal(err)
	}
	if err := idx["b"].Publish(ctx, "cam1", segs[1]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, err := idx["c"].Held(ctx, "cam1", t0, t0.Add(24*time.Hour))
		if err != nil || len(got) != 8640 {
			b.Fatalf("%d segments, %v", len(got), err)
		}
	}
}

func BenchmarkDecodeShared(b *testing.B) {
	m := encodeShared(Segment{Start: t0, Duration: 10 * time.Second, Size: 2 << 20, tracks: 0xfeed})
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := decodeShared(m); !ok {
			b.Fatal("not decoded")
		}
	}
}
