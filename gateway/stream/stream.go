// Package stream fans one camera out to many readers. A Stream receives RTP
// from the camera's source and publishes it twice: the `full` variant (every
// track) and the `video` variant (audio removed, for viewers without
// `sound`). Each packet is marshalled once per variant and shared by
// reference with every reader; each reader has a bounded queue drained by its
// own goroutine; the latest GOP is kept so a new reader starts on a keyframe
// at once. Timestamps and sequence numbers stay continuous across upstream
// reconnects, so viewers survive an upstream restart.
package stream

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// ErrNoMedia is returned when an upstream description has nothing to serve.
var ErrNoMedia = errors.New("upstream has no usable media")

// mediaState is the per-media publishing state of a stream.
type mediaState struct {
	typ       description.MediaType
	codec     codecKind
	codecName string
	clockRate int
	fullIdx   int
	videoIdx  int // -1 when the media is not in the video variant

	// timestamp continuity across upstream connections
	tsOffset uint32
	lastTS   uint32
	lastWall time.Time
	started  bool
	resync   bool

	lastKeyTS uint32
	haveKey   bool
}

// Stream is one camera's live stream on this node.
type Stream struct {
	// Camera is the camera id.
	Camera string
	// Full and Video are nil until the first upstream description arrives
	// (Ready is closed then).
	Full, Video *Variant

	pool     *packetPool
	ready    chan struct{}
	users    readerCounts
	received atomic.Uint64 // packets from the upstream, for the loss ratio

	mu     sync.Mutex // serializes writes from the source's goroutines
	medias []mediaState
	srcMap []int // source media index → stream media index, -1 = ignored
	closed bool
}

// New returns a stream waiting for its first description.
func New(camera string) *Stream { return newStream(camera, newPacketPool()) }

func newStream(camera string, pool *packetPool) *Stream {
	return &Stream{Camera: camera, pool: pool, ready: make(chan struct{})}
}

// Ready is closed once the stream has a description and variants.
func (s *Stream) Ready() <-chan struct{} { return s.ready }

// Variant returns the named variant (VariantFull or VariantVideo).
func (s *Stream) Variant(name string) *Variant {
	if name == VariantVideo {
		return s.Video
	}
	return s.Full
}

func codecOf(f format.Format) codecKind {
	switch f.(type) {
	case *format.H264:
		return codecH264
	case *format.H265:
		return codecH265
	}
	return codecOther
}

func cloneMedia(m *description.Media) *description.Media {
	return &description.Media{Type: m.Type, ID: m.ID, Profile: m.Profile, Formats: m.Formats}
}

// SetDescription implements source.Sink. The first description fixes the
// stream's medias; a later one (a reconnect) is mapped onto them by media
// type and codec, and timestamps are re-based to stay continuous.
func (s *Stream) SetDescription(desc *description.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.Full == nil {
		return s.initLocked(desc)
	}
	used := make([]bool, len(s.medias))
	s.srcMap = s.srcMap[:0]
	for _, m := range desc.Medias {
		idx := -1
		if !m.IsBackChannel && len(m.Formats) > 0 {
			for i := range s.medias {
				if !used[i] && s.medias[i].typ == m.Type && s.medias[i].codecName == m.Formats[0].Codec() {
					idx = i
					used[i] = true
					break
				}
			}
		}
		s.srcMap = append(s.srcMap, idx)
	}
	for i := range s.medias {
		s.medias[i].resync = true
		s.medias[i].haveKey = false
	}
	s.Full.resetGOP()
	s.Video.resetGOP()
	return nil
}

func (s *Stream) initLocked(desc *description.Session) error {
	full := &description.Session{Title: "camgate " + s.Camera}
	video := &description.Session{Title: "camgate " + s.Camera}
	keyed := false
	for _, m := range desc.Medias {
		if m.IsBackChannel || len(m.Formats) == 0 {
			s.srcMap = append(s.srcMap, -1)
			continue
		}
		st := mediaState{
			typ:       m.Type,
			codec:     codecOf(m.Formats[0]),
			codecName: m.Formats[0].Codec(),
			clockRate: m.Formats[0].ClockRate(),
			fullIdx:   len(full.Medias),
			videoIdx:  -1,
		}
		full.Medias = append(full.Medias, cloneMedia(m))
		if m.Type == description.MediaTypeVideo {
			st.videoIdx = len(video.Medias)
			video.Medias = append(video.Medias, cloneMedia(m))
			keyed = keyed || st.codec != codecOther
		}
		s.srcMap = append(s.srcMap, len(s.medias))
		s.medias = append(s.medias, st)
	}
	if len(s.medias) == 0 {
		return fmt.Errorf("%w: %d medias, none playable", ErrNoMedia, len(desc.Medias))
	}
	s.Full = newVariant(VariantFull, full, keyed, s.pool, &s.users)
	s.Video = newVariant(VariantVideo, video, keyed, s.pool, &s.users)
	close(s.ready)
	return nil
}

// WritePacketRTP implements source.Sink.
func (s *Stream) WritePacketRTP(media int, pkt *rtp.Packet, ntp time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || media < 0 || media >= len(s.srcMap) || s.srcMap[media] < 0 {
		return
	}
	m := &s.medias[s.srcMap[media]]
	s.received.Add(1)
	now := time.Now()
	if m.resync {
		m.resync = false
		if m.started && m.clockRate > 0 {
			elapsed := uint32(now.Sub(m.lastWall).Seconds() * float64(m.clockRate))
			m.tsOffset = m.lastTS + elapsed - pkt.Timestamp
		}
	}
	ts := pkt.Timestamp + m.tsOffset
	key := false
	if m.codec != codecOther && isKeyPayload(m.codec, pkt.Payload) {
		key = !m.haveKey || ts != m.lastKeyTS
		m.lastKeyTS, m.haveKey = ts, true
	}
	m.lastTS, m.lastWall, m.started = ts, now, true

	gop := s.users.wantGOP(now)
	p := s.Full.publish(m.fullIdx, pkt, ts, ntp, key, gop)
	switch {
	case m.videoIdx < 0:
	case m.videoIdx == m.fullIdx && p != nil:
		// Same media index and sequence numbers (both variants number
		// every packet of this media): the same bytes, shared.
		s.Video.publishShared(p, gop)
	default:
		if q := s.Video.publish(m.videoIdx, pkt, ts, ntp, key, gop); q != nil {
			q.Release()
		}
	}
	if p != nil {
		p.Release()
	}
}

// LatencyTolerant implements source.LatencyTolerant: true while every
// reader is latency tolerant (only the recorder, or nobody), so the
// upstream may deliver in bursts.
func (s *Stream) LatencyTolerant() bool { return s.users.live.Load() == 0 }

// OnLive implements source.LiveNotifier: f is called when the first live
// reader attaches (the stream stops being latency tolerant).
func (s *Stream) OnLive(f func()) { s.users.onLive.Store(&f) }

// gopKeep is how long a stream read only by tolerant readers (a recording)
// keeps caching its GOP after its last viewer left: a viewer who comes back
// within it still starts at once.
const gopKeep = time.Minute

// readerCounts counts a stream's readers for two policies: gathered
// upstream reads (no live reader) and the GOP cache, which costs a GOP of
// packets per camera (~0.5 MiB at 2 Mbit/s, 2 s GOP). By default the GOP is
// always cached (DESIGN: a new viewer starts at once; the live snapshot
// reads it). With viewersOnly (sessions.gop_cache: viewers) it is kept only
// for viewers: on while any live reader is attached, while there is no
// reader at all (the stream was just opened, for a viewer about to
// attach), and for gopKeep after the last live reader left. A camera only
// recorded, and not watched for a minute, then caches no GOP: its next
// viewer waits for a keyframe, as on a server without a GOP cache, the
// viewers after it start at once, and its live snapshot waits for a
// viewer.
type readerCounts struct {
	viewersOnly    bool // set before the stream is used
	live, tolerant atomic.Int32
	liveLeft       atomic.Int64 // unix nanoseconds when the last live reader left
	// onLive is called when live goes from 0 to 1 (Stream.OnLive)
	onLive atomic.Pointer[func()]
}

func (c *readerCounts) add(r *Reader, delta int32) {
	if r.tolerant {
		c.tolerant.Add(delta)
		return
	}
	switch n := c.live.Add(delta); {
	case n == 0 && delta < 0:
		c.liveLeft.Store(time.Now().UnixNano())
	case n == delta && delta > 0:
		if f := c.onLive.Load(); f != nil {
			(*f)()
		}
	}
}

func (c *readerCounts) wantGOP(now time.Time) bool {
	if !c.viewersOnly || c.live.Load() > 0 || c.tolerant.Load() == 0 {
		return true
	}
	left := c.liveLeft.Load()
	return left != 0 && now.UnixNano()-left < int64(gopKeep)
}

// Close ends the stream: every reader's Run returns ErrClosed.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.Full != nil {
		s.Full.close()
		s.Video.close()
	}
}
