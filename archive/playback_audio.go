package archive

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/camgate/camgate/archive/mp4"
)

// AudioEncoder turns recorded PCM into AAC for HLS playback: G.711
// cameras' audio is recorded as 16-bit PCM (fMP4 has no G.711), which no
// HLS player decodes. camgate's gateway passes one that runs ffmpeg.
type AudioEncoder interface {
	// AACConfig is the AAC that PCM of c is encoded into; false when c
	// cannot be encoded.
	AACConfig(c *codecs.LPCM) (mpeg4audio.AudioSpecificConfig, bool)
	// EncodeAAC encodes pcm (whole samples of c) into AAC access units of
	// 1024 samples: unit k holds the output samples from k×1024, the first
	// one starting with the first input sample.
	EncodeAAC(ctx context.Context, c *codecs.LPCM, pcm []byte) ([][]byte, error)
}

// maxPCMWindow and maxPCMBytes bound what one segment's encoding reads: a
// recorded segment is seconds long. The audio of a longer one (a mediamtx
// import of an hour) ends there; its video plays on.
const (
	maxPCMWindow = 10 * time.Minute
	maxPCMBytes  = 32 << 20
)

// maxPCMGap is the longest hole in a segment's recorded PCM that playback
// fills with silence; longer ones end the audio of that segment there.
const maxPCMGap = 2 * time.Second

// maxPCMRate is the highest sample rate encoded (cameras send 8–48 kHz).
const maxPCMRate = 192000

// encodeTimeout bounds one segment's encoding, the wait for an encoder
// included (AudioEncoder bounds the run itself).
const encodeTimeout = time.Minute

// pcmCacheSize is how many segments' encoded audio the store keeps: a
// player asks for each segment once, but every viewer of the same footage
// (and a seek back) asks again. About 4 KB per second of audio.
const pcmCacheSize = 256

// aacCache is an AudioEncoder that remembers the last pcmCacheSize
// encodings by their input's content, so that a segment is encoded once
// however many viewers play it (and whichever node holds it). Encodings
// of the same input at the same time run once.
type aacCache struct {
	enc  AudioEncoder
	seed maphash.Seed

	mu      sync.Mutex
	entries map[aacKey]*aacEntry
	order   []aacKey // oldest first
}

type aacKey struct {
	sum  uint64
	size int
	c    codecs.LPCM
}

type aacEntry struct {
	done chan struct{}
	aus  [][]byte
	err  error
}

func newAACCache(enc AudioEncoder) *aacCache {
	return &aacCache{enc: enc, seed: maphash.MakeSeed(), entries: map[aacKey]*aacEntry{}}
}

func (c *aacCache) AACConfig(l *codecs.LPCM) (mpeg4audio.AudioSpecificConfig, bool) {
	return c.enc.AACConfig(l)
}

func (c *aacCache) EncodeAAC(ctx context.Context, l *codecs.LPCM, pcm []byte) ([][]byte, error) {
	key := aacKey{sum: maphash.Bytes(c.seed, pcm), size: len(pcm), c: *l}
	aus, err := c.encode(ctx, key, l, pcm)
	if err != nil && ctx.Err() == nil {
		// Another request's encoding failed (its own deadline): try once
		// more, as its owner.
		aus, err = c.encode(ctx, key, l, pcm)
	}
	return aus, err
}

func (c *aacCache) encode(ctx context.Context, key aacKey, l *codecs.LPCM, pcm []byte) ([][]byte, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	if !ok {
		e = &aacEntry{done: make(chan struct{})}
		c.entries[key] = e
		c.order = append(c.order, key)
		if len(c.order) > pcmCacheSize {
			delete(c.entries, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.mu.Unlock()
	if !ok {
		e.aus, e.err = c.enc.EncodeAAC(ctx, l, pcm)
		if e.err != nil {
			c.forget(key, e) // a failure (a cancelled request) is not kept
		}
		close(e.done)
	}
	select {
	case <-e.done:
		return e.aus, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *aacCache) forget(key aacKey, e *aacEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[key] == e {
		delete(c.entries, key)
	}
}

// pcmTrack is a recorded PCM track that playback serves as AAC.
type pcmTrack struct {
	in  *fmp4.InitTrack // as recorded
	out *fmp4.InitTrack // the AAC served in its place (same ID)
}

// pcmRun is a PCM track's recorded samples joined in time order, holes up
// to maxPCMGap filled with silence, overlaps keeping the first samples.
type pcmRun struct {
	at     int64   // the first sample's wall-clock time, in samples since the epoch
	pcm    []byte  // whole samples
	frame  int64   // bytes per sample (all channels)
	starts []int64 // per part, where its samples begin (from at); -1: none
}

func (r pcmRun) samples() int64 { return int64(len(r.pcm)) / r.frame }

// joinPCM joins the samples of track in the parts of a segment that
// started at epoch (in samples since the Unix epoch). It stops at a hole
// longer than maxPCMGap, a part from before the first, or maxPCMWindow /
// maxPCMBytes of audio: what follows has no audio (the file's times are
// not trusted; imports and other nodes' files are read too).
func joinPCM(in *fmp4.InitTrack, parts fmp4.Parts, epoch int64) (pcmRun, error) {
	l := in.Codec.(*codecs.LPCM)
	r := pcmRun{frame: int64(l.BitDepth / 8 * max(l.ChannelCount, 1)), starts: make([]int64, len(parts))}
	rate := int64(in.TimeScale)
	if r.frame <= 0 || rate <= 0 || rate > maxPCMRate {
		return r, errors.New("invalid PCM track")
	}
	for i := range r.starts {
		r.starts[i] = -1
	}
	limit := min(int64(maxPCMWindow/time.Second)*rate, maxPCMBytes/r.frame) // samples
	have := false
	var base int64
	for i, p := range parts {
		for _, pt := range p.Tracks {
			if pt.ID != in.ID {
				continue
			}
			if pt.BaseTime > 1<<40 { // 63 days at 192 kHz
				return r, nil
			}
			if !have {
				base, have = int64(pt.BaseTime), true
				r.at = epoch + base
			}
			at, n := int64(pt.BaseTime)-base, r.samples()
			switch {
			case at < 0 || at-n > int64(maxPCMGap/time.Second)*rate || at >= limit:
				return r, nil
			case at > n:
				r.pcm = append(r.pcm, make([]byte, (at-n)*r.frame)...)
			}
			if r.starts[i] < 0 {
				r.starts[i] = max(at, n)
			}
			skip := max(n-at, 0) * r.frame
			for _, s := range pt.Samples {
				b := s.Payload[:len(s.Payload)-len(s.Payload)%int(r.frame)]
				d := min(skip, int64(len(b)))
				b, skip = b[d:], skip-d
				b = b[:min(int64(len(b)), limit*r.frame-int64(len(r.pcm)))]
				r.pcm = append(r.pcm, b...)
			}
		}
	}
	return r, nil
}

// copyPCM copies into w, which starts at sample from, the samples of r
// that fall in it.
func copyPCM(w []byte, from int64, r pcmRun) {
	lo, hi := max(from, r.at), min(from+int64(len(w))/r.frame, r.at+r.samples())
	if lo < hi {
		copy(w[(lo-from)*r.frame:(hi-from)*r.frame], r.pcm[(lo-r.at)*r.frame:(hi-r.at)*r.frame])
	}
}

// The units an AAC encoder makes depend on the samples around them (its
// transform overlaps the neighbouring frames). So that a segment's audio
// joins the next one's without a click, units sit on one grid of 1024
// output samples counted from the Unix epoch, each segment serves the
// units that start within it, and it is encoded with prerollUnits of the
// previous segment's samples before and postrollUnits of the next one's
// after (silence where there is none), which are then dropped.
const (
	prerollUnits  = 2
	postrollUnits = 2
)

// encodePCM replaces the samples of t in parts, a segment that started at
// epoch, by AAC; neighbours are the PCM runs of the segments around it.
// The units go to the parts that hold the PCM they came from, with times
// in the AAC's clock relative to the segment (as the other tracks'). On
// any error, and when there is no unit to serve, the PCM is taken out of
// parts: a segment never carries it as AAC.
func encodePCM(ctx context.Context, enc AudioEncoder, t pcmTrack, parts fmp4.Parts, epoch time.Duration, neighbours []pcmRun) error {
	served := false
	defer func() {
		if !served {
			dropTrack(parts, t.in.ID)
		}
	}()
	inRate, outRate := int64(t.in.TimeScale), int64(t.out.TimeScale)
	if l := t.in.Codec.(*codecs.LPCM); inRate != int64(l.SampleRate) || inRate < 1000 || inRate > maxPCMRate || outRate <= 0 || outRate > maxPCMRate {
		return fmt.Errorf("a PCM track of %d Hz timed at %d Hz", l.SampleRate, inRate)
	}
	cur, err := joinPCM(t.in, parts, mp4.ToTicks(epoch, t.in.TimeScale))
	if err != nil || len(cur.pcm) == 0 {
		return err
	}
	const unit = mpeg4audio.SamplesPerAccessUnit
	// Times since the epoch, converted by whole seconds first: sample
	// counts times a rate would overflow.
	toOut := func(in int64) int64 { return floorDiv(in, inRate)*outRate + floorMod(in, inRate)*outRate/inRate }
	toIn := func(out int64) int64 { return floorDiv(out, outRate)*inRate + floorMod(out, outRate)*inRate/outRate }
	// The units that start within the segment: k0 … k1-1.
	k0 := ceilDiv(toOut(cur.at), unit)
	k1 := ceilDiv(toOut(cur.at+cur.samples()), unit)
	if k1 <= k0 {
		return nil
	}
	from := toIn((k0 - prerollUnits) * unit)
	to := toIn((k1 + postrollUnits) * unit)
	if (to-from)*cur.frame > 2*maxPCMBytes {
		return fmt.Errorf("%v of recorded audio in one segment", mp4.FromTicks(to-from, t.in.TimeScale))
	}
	window := make([]byte, (to-from)*cur.frame)
	for _, r := range neighbours {
		if r.frame == cur.frame {
			copyPCM(window, from, r)
		}
	}
	copyPCM(window, from, cur)
	aus, err := enc.EncodeAAC(ctx, t.in.Codec.(*codecs.LPCM), window)
	if err != nil {
		return err
	}
	if int64(len(aus)) < prerollUnits+k1-k0 {
		return fmt.Errorf("the encoder made %d units of %d", len(aus), prerollUnits+k1-k0)
	}
	aus = aus[prerollUnits : prerollUnits+k1-k0]
	// Unit k goes to the last part whose PCM starts at or before it.
	epochOut := mp4.ToTicks(epoch, t.out.TimeScale)
	k := k0
	for i, p := range parts {
		if cur.starts[i] < 0 {
			dropTrack(parts[i:i+1], t.in.ID) // past where the audio ended
			continue
		}
		end := k1
		for j := i + 1; j < len(parts); j++ {
			if cur.starts[j] >= 0 {
				end = min(ceilDiv(toOut(cur.at+cur.starts[j]), unit), k1)
				break
			}
		}
		pt := &fmp4.PartTrack{ID: t.out.ID, BaseTime: uint64(max(k*unit-epochOut, 0))}
		for ; k < end; k++ {
			pt.Samples = append(pt.Samples, &fmp4.Sample{Duration: unit, Payload: aus[k-k0]})
		}
		tracks := p.Tracks[:0]
		for _, x := range p.Tracks {
			if x.ID != t.in.ID {
				tracks = append(tracks, x)
			} else if len(pt.Samples) > 0 {
				tracks = append(tracks, pt)
				pt = &fmp4.PartTrack{ID: t.out.ID} // a second run of the track in this part: already carried
			}
		}
		p.Tracks = tracks
	}
	served = true
	return nil
}

// dropTrack takes track id out of parts.
func dropTrack(parts fmp4.Parts, id int) {
	for _, p := range parts {
		p.Tracks = slices.DeleteFunc(p.Tracks, func(pt *fmp4.PartTrack) bool { return pt.ID == id })
	}
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// maxNeighbourSize: a neighbour bigger than this (an hour-long import) is
// not read for its few samples; the seam then joins silence.
const maxNeighbourSize = 64 << 20

// pcmAround is the PCM of the segments just before and after seg (within
// contiguity) on the track recorded like t: what its audio is encoded
// between, so that it joins them without a click. A neighbour that
// cannot be read is left out (silence).
func (s *Store) pcmAround(ctx context.Context, camera string, seg Segment, t *fmp4.InitTrack) []pcmRun {
	var runs []pcmRun
	for _, sg := range s.segmentsOf(ctx, camera, seg.Start.Add(-contiguity), seg.End().Add(contiguity)) {
		if sg.Start.Equal(seg.Start) || sg.tracks != seg.tracks || sg.Size > maxNeighbourSize ||
			(sg.End().Sub(seg.Start).Abs() > contiguity && sg.Start.Sub(seg.End()).Abs() > contiguity) {
			continue
		}
		b, err := s.readSegment(camera, sg)
		if err != nil {
			continue
		}
		init, _, err := parseInit(b)
		if err != nil {
			continue
		}
		nt := keptTrack(init.Tracks, t.ID)
		if nt == nil || nt.TimeScale != t.TimeScale || fmt.Sprint(nt.Codec) != fmt.Sprint(t.Codec) {
			continue
		}
		moov, _ := mp4.At(b, 0)
		moov, _ = mp4.At(b, moov.End())
		parts, err := readParts(b, moov.End())
		if err != nil {
			continue
		}
		if r, err := joinPCM(nt, parts, mp4.ToTicks(time.Duration(sg.Start.UnixNano()), t.TimeScale)); err == nil {
			runs = append(runs, r)
		}
	}
	return runs
}
