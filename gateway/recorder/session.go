package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtplpcm"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmjpeg"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/gateway/stream"
)

// ErrCannotRecord: the stream has no track the archive can store. It is
// not retried: the same camera sends the same codecs.
var ErrCannotRecord = errors.New("no track the archive can store (H264, H265, M-JPEG, AAC, Opus, G.711, LPCM)")

// session turns one reader's packets into archive samples. Owned by the
// reader's goroutine.
type session struct {
	store  *archive.Store
	camera string
	log    *slog.Logger

	byMedia []*track // indexed by Packet.Media; nil = not recorded
	tracks  []*track // recorded tracks, in writer order
	w       *archive.Writer
	// hasVideo: recording starts on a video keyframe
	hasVideo bool
	t0       time.Time // wall-clock time of the first packet: timeline 0
	pkt      rtp.Packet
	// skipped names the media not recorded, "audio/G722".
	skipped []string
}

// track is one recorded media. Video tracks need their parameter sets
// (SDP or in-band) before the writer can describe them.
type track struct {
	idx    int
	clock  uint32
	video  bool
	format format.Format

	h264 *rtph264.Decoder
	// fast depacketizes H264 without joining fragments (h264depay.go);
	// nil once the camera was seen to put start codes in its NAL units
	// (annexB): then h264 does, as it splits them.
	fast   *h264Depay
	annexB bool
	h265   *rtph265.Decoder
	opus   *rtpsimpleaudio.Decoder
	aac    *rtpmpeg4audio.Decoder
	lpcm   *rtplpcm.Decoder // G.711 and L16/L24
	mjpeg  *rtpmjpeg.Decoder

	// g711 maps a G.711 byte to its 16-bit big-endian sample (nil: not
	// G.711); pcm is the current packet decoded, reused (the writer copies).
	g711 *g711Table
	pcm  []byte

	// width, height of M-JPEG frames (0 until the first); writerSize is
	// what the current writer was made with
	width, height int
	writerSize    [2]int

	// video parameters; writerParams are those the current writer was made with
	vps, sps, pps []byte
	writerParams  [3][]byte
	keyed         bool
	dts264        *h264.DTSExtractor
	dts265        *h265.DTSExtractor

	audio codecs.Codec

	started bool
	lastTS  uint32
	pts     int64 // unwrapped RTP time on the session's timeline

	// held are the stream packets the depacketizer may still point into
	// (fragments of an access unit being assembled): held rather than
	// copied, released once an access unit is out.
	held []*stream.Packet
}

// maxHeld bounds the packets held for one access unit (~6 MB of payload,
// below the depacketizer's own access unit limit, above any keyframe); a
// stream that never completes one (damaged, or not what it claims)
// restarts its decoder.
const maxHeld = 4096

// hold keeps p until the next access unit is out.
func (t *track) hold(p *stream.Packet) {
	p.Hold()
	t.held = append(t.held, p)
}

// auDone releases the held packets once an access unit was returned. The
// current packet (the last held) stays: a decoder that splits access units
// by timestamp has already kept its NAL units for the next one.
func (t *track) auDone() {
	last := len(t.held) - 1
	for i := 0; i < last; i++ {
		t.held[i].Release()
		t.held[i] = nil
	}
	if last > 0 {
		t.held[0], t.held[last] = t.held[last], nil
		t.held = t.held[:1]
	}
}

func (t *track) releaseHeld() {
	for i, p := range t.held {
		p.Release()
		t.held[i] = nil
	}
	t.held = t.held[:0]
}

func newSession(store *archive.Store, camera string, desc *description.Session, log *slog.Logger) (*session, error) {
	s := &session{store: store, camera: camera, log: log, byMedia: make([]*track, len(desc.Medias))}
	for i, m := range desc.Medias {
		if len(m.Formats) == 0 {
			continue
		}
		t, err := newTrack(m.Formats[0])
		if err != nil {
			return nil, err
		}
		if t == nil {
			s.skipped = append(s.skipped, string(m.Type)+"/"+m.Formats[0].Codec())
			continue
		}
		t.idx = len(s.tracks)
		s.hasVideo = s.hasVideo || t.video
		s.byMedia[i] = t
		s.tracks = append(s.tracks, t)
	}
	if len(s.tracks) == 0 {
		return nil, fmt.Errorf("%w: the camera sends %s", ErrCannotRecord, strings.Join(s.skipped, ", "))
	}
	return s, nil
}

func newTrack(f format.Format) (*track, error) {
	t := &track{clock: uint32(f.ClockRate()), format: f}
	switch f := f.(type) {
	case *format.H264:
		t.video, t.sps, t.pps = true, f.SPS, f.PPS
	case *format.H265:
		t.video, t.vps, t.sps, t.pps = true, f.VPS, f.SPS, f.PPS
	case *format.Opus:
		t.audio = &codecs.Opus{ChannelCount: f.ChannelCount}
	case *format.MPEG4Audio:
		if f.Config == nil {
			return nil, nil
		}
		t.audio = &codecs.MPEG4Audio{Config: *f.Config}
	case *format.G711:
		// fMP4 has no G.711 sample entry that players read: it is stored
		// decoded, as 16-bit PCM (as mediamtx does), twice the bytes.
		t.audio = &codecs.LPCM{BitDepth: 16, SampleRate: f.SampleRate, ChannelCount: f.ChannelCount}
		t.g711 = newG711Table(f.MULaw)
	case *format.LPCM:
		if f.BitDepth != 16 && f.BitDepth != 24 {
			return nil, nil // L8 is unsigned; ipcm is signed
		}
		t.audio = &codecs.LPCM{BitDepth: f.BitDepth, SampleRate: f.SampleRate, ChannelCount: f.ChannelCount}
	case *format.MJPEG:
		t.video = true
	default:
		return nil, nil
	}
	if err := t.resetDecoder(); err != nil {
		return nil, err
	}
	return t, nil
}

// resetDecoder makes a fresh depacketizer (at start, and to drop the state
// of a stream that held too many packets without an access unit).
func (t *track) resetDecoder() error {
	var err error
	switch f := t.format.(type) {
	case *format.H264:
		t.h264, err = f.CreateDecoder()
		if err == nil && !t.annexB {
			t.fast = &h264Depay{}
		}
	case *format.H265:
		t.h265, err = f.CreateDecoder()
	case *format.Opus:
		t.opus, err = f.CreateDecoder()
	case *format.MPEG4Audio:
		t.aac, err = f.CreateDecoder()
	case *format.G711:
		t.lpcm, err = f.CreateDecoder()
	case *format.LPCM:
		t.lpcm, err = f.CreateDecoder()
	case *format.MJPEG:
		t.mjpeg, err = f.CreateDecoder()
	}
	if err != nil {
		return fmt.Errorf("recorder: %s decoder: %w", t.format.Codec(), err)
	}
	return nil
}

func (t *track) codec() codecs.Codec {
	switch {
	case t.h264 != nil:
		return &codecs.H264{SPS: t.sps, PPS: t.pps}
	case t.h265 != nil:
		return &codecs.H265{VPS: t.vps, SPS: t.sps, PPS: t.pps}
	case t.mjpeg != nil:
		return &codecs.MJPEG{Width: t.width, Height: t.height}
	}
	return t.audio
}

func (t *track) ready() bool {
	switch {
	case !t.video:
		return true
	case t.mjpeg != nil:
		return t.width > 0
	}
	return len(t.sps) > 0 && len(t.pps) > 0 && (t.h265 == nil || len(t.vps) > 0)
}

// write handles one packet. Depacketizers keep references to earlier
// payloads until an access unit is complete, and the stream reuses a
// packet's buffer once its last reference is released: the track holds
// the packets of the access unit being assembled instead of copying them.
func (s *session) write(p *stream.Packet) error {
	if p.Media < 0 || p.Media >= len(s.byMedia) || s.byMedia[p.Media] == nil {
		return nil
	}
	t := s.byMedia[p.Media]
	if err := s.pkt.Unmarshal(p.Buf); err != nil {
		return nil
	}
	if len(t.held) >= maxHeld {
		t.releaseHeld()
		if err := t.resetDecoder(); err != nil {
			return err
		}
	}
	t.hold(p)
	ts := s.pkt.Timestamp
	if !t.started {
		if s.t0.IsZero() {
			s.t0 = p.NTP
		}
		// Each track is placed on the shared timeline by its capture time,
		// then advances by its own RTP clock.
		d := p.NTP.Sub(s.t0)
		t.pts = int64(d/time.Second)*int64(t.clock) + int64(d%time.Second)*int64(t.clock)/int64(time.Second)
		t.started = true
	} else {
		t.pts += int64(int32(ts - t.lastTS))
	}
	t.lastTS = ts
	switch {
	case t.mjpeg != nil:
		return s.writeMJPEG(t, p.NTP)
	case t.video:
		return s.writeVideo(t, p.NTP)
	}
	return s.writeAudio(t, p.NTP)
}

func (s *session) writeVideo(t *track, ntp time.Time) error {
	var au [][]byte
	var fau *h264AU
	var err error
	switch {
	case t.fast != nil:
		fau, err = t.fast.Decode(&s.pkt)
		if errors.Is(err, errAnnexB) {
			s.log.Info("the camera puts start codes inside H264 NAL units: splitting them (slower depacketizer)")
			t.fast, t.annexB = nil, true // gortsplib's decoder takes the next packets
		}
		if err == nil {
			au = fau.views
		}
	case t.h264 != nil:
		au, err = t.h264.Decode(&s.pkt)
	default:
		au, err = t.h265.Decode(&s.pkt)
	}
	if err != nil {
		return nil // more packets needed, or a damaged access unit: skip it
	}
	defer t.auDone() // au is written (copied) before this returns
	var random bool
	if t.h264 != nil {
		random = t.paramsH264(au)
	} else {
		random = t.paramsH265(au)
	}
	if !t.keyed {
		if !random {
			return nil
		}
		t.keyed = true
		t.dts264, t.dts265 = h264.NewDTSExtractor(), h265.NewDTSExtractor()
	}
	if s.w != nil && random && !t.sameParams() {
		s.log.Info("video parameters changed: new segment")
		s.closeWriter()
	}
	// The DTS extractor reads the SPS of every random-access unit; cameras
	// (and ffmpeg) that send the parameter sets only in the SDP get them
	// prepended here. The sample keeps its own NALUs: the init has them.
	ext := au
	if random && !t.inBand(au) {
		ext = t.withParams(au)
	}
	var dts int64
	if t.h264 != nil {
		dts, err = t.dts264.Extract(ext, t.pts)
	} else {
		dts, err = t.dts265.Extract(ext, t.pts)
	}
	if err != nil {
		t.keyed = false // resume at the next random access point
		return nil
	}
	sm := archive.Sample{DTS: dts, PTSOffset: int32(t.pts - dts), Sync: random, NALUs: au, NTP: ntp}
	if fau != nil {
		// The views may hold only a NAL unit's head: the pieces are written.
		sm.NALUs, sm.Pieces, sm.PieceCounts = nil, fau.pieces, fau.counts
	}
	return s.writeSample(t, sm)
}

// paramsH264 picks up in-band SPS/PPS and reports a random access point.
func (t *track) paramsH264(au [][]byte) bool {
	for i, n := range au {
		if len(n) == 0 {
			continue
		}
		// The access unit then carries the kept copy: the DTS extractor
		// keeps the SPS it last saw, and n is in a packet that is reused.
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			t.sps = keepParam(t.sps, n)
			au[i] = t.sps
		case h264.NALUTypePPS:
			t.pps = keepParam(t.pps, n)
			au[i] = t.pps
		}
	}
	return h264.IsRandomAccess(au)
}

func (t *track) paramsH265(au [][]byte) bool {
	for i, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h265.NALUType((n[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			t.vps = keepParam(t.vps, n)
			au[i] = t.vps
		case h265.NALUType_SPS_NUT:
			t.sps = keepParam(t.sps, n)
			au[i] = t.sps
		case h265.NALUType_PPS_NUT:
			t.pps = keepParam(t.pps, n)
			au[i] = t.pps
		}
	}
	return h265.IsRandomAccess(au)
}

// inBand reports whether au carries an SPS.
func (t *track) inBand(au [][]byte) bool {
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if (t.h264 != nil && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS) ||
			(t.h264 == nil && h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT) {
			return true
		}
	}
	return false
}

// withParams is au after the known parameter sets (VPS for H265, SPS, PPS).
func (t *track) withParams(au [][]byte) [][]byte {
	out := make([][]byte, 0, len(au)+3)
	for _, p := range [][]byte{t.vps, t.sps, t.pps} {
		if len(p) > 0 {
			out = append(out, p)
		}
	}
	return append(out, au...)
}

// keepParam returns a parameter set that outlives the packet it came in:
// the current one when unchanged (no copy per keyframe), else a copy.
func keepParam(cur, n []byte) []byte {
	if bytes.Equal(cur, n) {
		return cur
	}
	return bytes.Clone(n)
}

func (t *track) sameParams() bool {
	return bytes.Equal(t.writerParams[0], t.vps) && bytes.Equal(t.writerParams[1], t.sps) && bytes.Equal(t.writerParams[2], t.pps)
}

// writeMJPEG writes each JPEG frame as a sample, every one a sync sample;
// a change of frame size starts a segment (the init carries the size).
func (s *session) writeMJPEG(t *track, ntp time.Time) error {
	frame, err := t.mjpeg.Decode(&s.pkt)
	if err != nil {
		return nil // more packets needed, or a damaged frame: skip it
	}
	defer t.auDone() // the frame is a new buffer, but its fragments were held until now
	w, h, ok := jpegSize(frame)
	if !ok {
		return nil
	}
	t.width, t.height = w, h
	if s.w != nil && t.writerSize != [2]int{w, h} {
		s.log.Info("M-JPEG frame size changed: new segment", "width", w, "height", h)
		s.closeWriter()
	}
	return s.writeSample(t, archive.Sample{DTS: t.pts, Sync: true, Payload: frame, NTP: ntp})
}

func (s *session) writeAudio(t *track, ntp time.Time) error {
	if t.lpcm != nil {
		pcm, err := t.lpcm.Decode(&s.pkt)
		if err != nil {
			return nil
		}
		defer t.auDone()
		if t.g711 != nil {
			t.pcm = t.g711.decode(t.pcm, pcm)
			pcm = t.pcm
		}
		return s.writeSample(t, archive.Sample{DTS: t.pts, Sync: true, Payload: pcm, NTP: ntp})
	}
	if t.opus != nil {
		frame, err := t.opus.Decode(&s.pkt)
		if err != nil {
			return nil
		}
		defer t.auDone()
		return s.writeSample(t, archive.Sample{DTS: t.pts, Sync: true, Payload: frame, NTP: ntp})
	}
	aus, err := t.aac.Decode(&s.pkt)
	if err != nil {
		return nil
	}
	defer t.auDone()
	for i, au := range aus {
		dts := t.pts + int64(i*mpeg4audio.SamplesPerAccessUnit)
		if err := s.writeSample(t, archive.Sample{DTS: dts, Sync: true, Payload: au, NTP: ntp}); err != nil {
			return err
		}
	}
	return nil
}

// writeSample opens the writer once every video track has its parameters.
func (s *session) writeSample(t *track, sm archive.Sample) error {
	if s.w == nil {
		if !sm.Sync || (s.hasVideo && !t.video) {
			return nil // start on a video keyframe
		}
		for _, x := range s.tracks {
			if !x.ready() {
				return nil
			}
		}
		tracks := make([]archive.Track, len(s.tracks))
		for i, x := range s.tracks {
			tracks[i] = archive.Track{Codec: x.codec(), ClockRate: x.clock}
			x.writerParams = [3][]byte{x.vps, x.sps, x.pps}
			x.writerSize = [2]int{x.width, x.height}
		}
		w, err := s.store.NewWriter(s.camera, tracks)
		if err != nil {
			return err
		}
		s.w = w
	}
	return s.w.WriteSample(t.idx, sm)
}

func (s *session) closeWriter() {
	if s.w == nil {
		return
	}
	if err := s.w.Close(); err != nil {
		s.log.Warn("closing segment failed", "error", err)
	}
	s.w = nil
}

func (s *session) close() {
	s.closeWriter()
	for _, t := range s.tracks {
		t.releaseHeld()
	}
}
