package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/camgate/camgate/archive/mp4"

	gomp4 "github.com/abema/go-mp4"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// oracleTrack is what go-mp4 reads of one trak of a progressive MP4.
type oracleTrack struct {
	handler    string
	timescale  uint32
	stts       []gomp4.SttsEntry
	stsc       []gomp4.StscEntry
	sizes      []uint32
	offsets    []uint64
	co64       bool
	elst       *gomp4.Elst
	sampleSize uint32 // stsz's common size, 0 when per sample
}

// readOracle parses b with go-mp4: the top-level boxes, the movie
// timescale and every trak's tables.
func readOracle(t *testing.T, b []byte) (top []string, movieScale uint32, tracks []*oracleTrack) {
	t.Helper()
	var cur *oracleTrack
	_, err := gomp4.ReadBoxStructure(bytes.NewReader(b), func(h *gomp4.ReadHandle) (any, error) {
		typ := h.BoxInfo.Type.String()
		if len(h.Path) == 1 {
			top = append(top, typ)
		}
		switch typ {
		case "moov", "mdia", "minf", "stbl", "edts":
			return h.Expand()
		case "trak":
			cur = &oracleTrack{}
			tracks = append(tracks, cur)
			return h.Expand()
		case "mvhd", "mdhd", "hdlr", "stts", "stsc", "stsz", "stco", "co64", "elst":
		default:
			return nil, nil
		}
		bx, _, err := h.ReadPayload()
		if err != nil {
			return nil, err
		}
		switch p := bx.(type) {
		case *gomp4.Mvhd:
			movieScale = p.Timescale
		case *gomp4.Mdhd:
			cur.timescale = p.Timescale
		case *gomp4.Hdlr:
			cur.handler = string(p.HandlerType[:])
		case *gomp4.Stts:
			cur.stts = p.Entries
		case *gomp4.Stsc:
			cur.stsc = p.Entries
		case *gomp4.Stsz:
			cur.sampleSize, cur.sizes = p.SampleSize, p.EntrySize
			if p.SampleSize != 0 {
				cur.sizes = make([]uint32, p.SampleCount)
				for i := range cur.sizes {
					cur.sizes[i] = p.SampleSize
				}
			}
		case *gomp4.Stco:
			for _, o := range p.ChunkOffset {
				cur.offsets = append(cur.offsets, uint64(o))
			}
		case *gomp4.Co64:
			cur.co64, cur.offsets = true, p.ChunkOffset
		case *gomp4.Elst:
			cur.elst = p
		}
		return nil, nil
	})
	if err != nil {
		t.Fatalf("go-mp4 cannot read the download: %v", err)
	}
	return top, movieScale, tracks
}

// samples returns each sample's bytes, located through stsc, stco/co64
// and stsz as a player does.
func (o *oracleTrack) samples(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	n := 0
	for ci, off := range o.offsets {
		per := uint32(0)
		for _, e := range o.stsc {
			if e.FirstChunk <= uint32(ci+1) {
				per = e.SamplesPerChunk
			}
		}
		for range per {
			if n >= len(o.sizes) {
				t.Fatalf("%s: stsc claims more samples than stsz's %d", o.handler, len(o.sizes))
			}
			end := off + uint64(o.sizes[n])
			if end > uint64(len(b)) {
				t.Fatalf("%s: sample %d at [%d, %d) of a %d-byte file", o.handler, n, off, end, len(b))
			}
			out = append(out, b[off:end])
			off, n = end, n+1
		}
	}
	if n != len(o.sizes) {
		t.Fatalf("%s: chunks hold %d samples, stsz %d", o.handler, n, len(o.sizes))
	}
	return out
}

// recordStamped records d of 25 fps video and 50 fps audio like
// recordSynthetic, each frame carrying its index: a sample read at a wrong
// offset or out of order shows.
func recordStamped(t *testing.T, s *Store, camera string, start time.Time, d time.Duration) {
	t.Helper()
	w, err := s.NewWriter(camera, []Track{
		{Codec: &codecs.H264{SPS: testSPS, PPS: testPPS}, ClockRate: 90000},
		{Codec: &codecs.Opus{ChannelCount: 2}, ClockRate: 48000},
	})
	if err != nil {
		t.Fatal(err)
	}
	for vi, ai := 0, 0; ; {
		vt := time.Duration(vi) * 40 * time.Millisecond
		at := time.Duration(ai) * 20 * time.Millisecond
		if vt >= d && at >= d {
			break
		}
		if vt <= at {
			frame := make([]byte, 1000+vi%7)
			binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
			frame[4] = 0x41
			if vi%25 == 0 {
				frame[4] = 0x65
			}
			binary.BigEndian.PutUint32(frame[5:], uint32(vi))
			err = w.WriteSample(0, Sample{DTS: int64(vi) * 3600, Sync: vi%25 == 0, Payload: frame, NTP: start.Add(vt)})
			vi++
		} else {
			audio := make([]byte, 100+ai%5)
			binary.BigEndian.PutUint32(audio, uint32(ai))
			err = w.WriteSample(1, Sample{DTS: int64(ai) * 960, Sync: true, Payload: audio, NTP: start.Add(at)})
			ai++
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDownloadOracle reads the progressive MP4 with go-mp4, not with our
// own parser: the box tree, chunk offsets that reach the right sample
// bytes, the samples and durations of the range, and edit lists that
// skip the lead-in before the range start; once with 32-bit chunk offsets
// and once with co64 forced.
func TestDownloadOracle(t *testing.T) {
	for _, tc := range []struct {
		name      string
		co64Above int64
		wantCo64  bool
	}{
		{name: "stco", co64Above: 0, wantCo64: false},
		{name: "co64", co64Above: 1, wantCo64: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, t.TempDir(), &fakeClock{now: t0.Add(time.Hour)})
			defer s.Close()
			s.co64Above = tc.co64Above
			recordStamped(t, s, "cam1", t0, 8*time.Second)
			start, end := t0.Add(1500*time.Millisecond), t0.Add(5300*time.Millisecond)
			d, err := s.PrepareDownload(context.Background(), "admin", "cam1", start, end)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := d.Write(&out); err != nil {
				t.Fatal(err)
			}
			b := out.Bytes()
			top, movieScale, tracks := readOracle(t, b)
			if !slices.Equal(top, []string{"ftyp", "moov", "mdat"}) {
				t.Fatalf("top-level boxes %v, want [ftyp moov mdat]", top)
			}
			mustLen(t, "tracks", tracks, 2)
			for _, tr := range tracks {
				if tr.co64 != tc.wantCo64 {
					t.Fatalf("%s: co64 %v, want %v", tr.handler, tr.co64, tc.wantCo64)
				}
				var n uint32
				var mediaDur int64
				for _, e := range tr.stts {
					n += e.SampleCount
					mediaDur += int64(e.SampleCount) * int64(e.SampleDelta)
				}
				if int(n) != len(tr.sizes) {
					t.Fatalf("%s: stts counts %d samples, stsz %d", tr.handler, n, len(tr.sizes))
				}
				var step int64 // ticks per frame
				var stampAt int
				switch tr.handler {
				case "vide":
					step, stampAt = 3600, 5
				case "soun":
					step, stampAt = 960, 0
				default:
					t.Fatalf("track of handler %q", tr.handler)
				}
				samples := tr.samples(t, b)
				first := int(binary.BigEndian.Uint32(samples[0][stampAt:]))
				for i, smp := range samples {
					if got := int(binary.BigEndian.Uint32(smp[stampAt:])); got != first+i {
						t.Fatalf("%s: sample %d holds frame %d, want %d", tr.handler, i, got, first+i)
					}
				}
				frameDur := time.Duration(step) * time.Second / time.Duration(tr.timescale)
				// The file starts on the sync sample at or before start (every
				// 25th video frame, every audio frame) and ends before end.
				firstAt := time.Duration(first) * frameDur
				wantFirst := 1500 * time.Millisecond / frameDur
				if tr.handler == "vide" {
					wantFirst = 25
				}
				if first != int(wantFirst) {
					t.Fatalf("%s: first frame %d, want %d", tr.handler, first, wantFirst)
				}
				last := first + len(samples) - 1
				if wantLast := int((5300*time.Millisecond+frameDur-1)/frameDur) - 1; last != wantLast {
					t.Fatalf("%s: last frame %d, want %d", tr.handler, last, wantLast)
				}
				if mediaDur != int64(len(samples))*step {
					t.Fatalf("%s: media duration %d ticks, want %d samples × %d", tr.handler, mediaDur, len(samples), step)
				}
				// One edit: media from the range start (the lead-in skipped)
				// to the last sample's end.
				if tr.elst == nil || tr.elst.EntryCount != 1 {
					t.Fatalf("%s: edit list %+v, want one entry", tr.handler, tr.elst)
				}
				lead := int64((1500*time.Millisecond - firstAt) * time.Duration(tr.timescale) / time.Second)
				if mt := tr.elst.GetMediaTime(0); mt != lead {
					t.Fatalf("%s: edit media time %d, want the lead-in %d", tr.handler, mt, lead)
				}
				visible := float64(tr.elst.GetSegmentDuration(0)) / float64(movieScale)
				want := float64(mediaDur-lead) / float64(tr.timescale)
				if math.Abs(visible-want) > 1/float64(movieScale) {
					t.Fatalf("%s: edit lasts %.4f s, want %.4f", tr.handler, visible, want)
				}
			}
		})
	}
}

// TestReadPartsMatchesGenericDecoder: the hand moof parser gives the HLS
// path the parts mediacommon's decoder gave it, on what the recorder writes.
func TestReadPartsMatchesGenericDecoder(t *testing.T) {
	s := newTestStore(t, t.TempDir(), &fakeClock{now: t0.Add(time.Hour)})
	defer s.Close()
	recordStamped(t, s, "cam1", t0, 5*time.Second)
	segs := s.Segments("cam1", t0, t0.Add(time.Hour))
	if len(segs) == 0 {
		t.Fatal("nothing recorded")
	}
	for _, sg := range segs {
		b, err := s.readSegment("cam1", sg)
		if err != nil {
			t.Fatal(err)
		}
		ftyp, _ := mp4.At(b, 0)
		moov, _ := mp4.At(b, ftyp.End())
		got, err := readParts(b, moov.End())
		if err != nil {
			t.Fatal(err)
		}
		var want fmp4.Parts
		if err := want.Unmarshal(b[moov.End():]); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("segment %s: hand-parsed parts differ from the generic decoder's", sg.ID())
		}
	}
}
