package archive

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// TestPartHeaderMatchesMediacommon: the writer's hand-made moof and mdat
// are byte for byte what mediacommon's fmp4.Part.Marshal writes for the same
// samples (sync and non-sync, with and without composition offsets, tracks
// without samples in the part).
func TestPartHeaderMatchesMediacommon(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var pool sync.Pool
	for i := range 300 {
		var tracks []*writerTrack
		part := fmp4.Part{SequenceNumber: rng.Uint32()}
		for id := 1; id <= 1+rng.IntN(3); id++ {
			wt := &writerTrack{init: &fmp4.InitTrack{ID: id}, baseTime: rng.Uint64N(1 << 40)}
			tracks = append(tracks, wt)
			n := rng.IntN(6)
			if n == 0 {
				continue
			}
			pt := &fmp4.PartTrack{ID: id, BaseTime: wt.baseTime}
			for range n {
				payload := make([]byte, rng.IntN(64))
				for k := range payload {
					payload[k] = byte(rng.Uint32())
				}
				s := fmp4.Sample{Duration: rng.Uint32N(9000), IsNonSyncSample: rng.IntN(2) == 0, Payload: payload}
				if i%3 == 0 {
					s.PTSOffset = int32(rng.IntN(6000)) - 3000
				}
				pt.Samples = append(pt.Samples, &s)
				wt.samples = append(wt.samples, partSample{duration: s.Duration, size: uint32(len(payload)), ptsOffset: s.PTSOffset, nonSync: s.IsNonSyncSample})
				wt.data.append(&pool, payload)
			}
			wt.partBytes = wt.data.size
			part.Tracks = append(part.Tracks, pt)
		}
		if len(part.Tracks) == 0 {
			continue
		}
		var want seekablebuffer.Buffer
		if err := part.Marshal(&want); err != nil {
			t.Fatal(err)
		}
		got := appendPartHeader(nil, part.SequenceNumber, tracks)
		for _, wt := range tracks {
			got = append(got, wt.data.bytes(wt.partBytes)...)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("case %d: part differs\ngot  % x\nwant % x", i, got, want.Bytes())
		}
	}
}

// TestPartDataKeepsBytesAcrossChunks: appended payloads of any size read
// back in order across chunk boundaries, and dropping a part keeps the
// pending bytes after it, returning only whole chunks.
func TestPartDataKeepsBytesAcrossChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var pool sync.Pool
	var d partData
	var want []byte
	for range 200 {
		b := make([]byte, rng.IntN(3*partChunk))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		d.append(&pool, b)
		want = append(want, b...)
		if got := d.bytes(d.size); !bytes.Equal(got, want) {
			t.Fatalf("read back %d bytes, differ from the %d appended", len(got), len(want))
		}
		n := rng.IntN(len(want) + 1)
		d.drop(&pool, n)
		want = want[n:]
		if d.size != len(want) || len(d.chunks) > (d.off+d.size)/partChunk+1 {
			t.Fatalf("after dropping %d: size %d (want %d), %d chunks for %d bytes at %d", n, d.size, len(want), len(d.chunks), d.size, d.off)
		}
	}
}
