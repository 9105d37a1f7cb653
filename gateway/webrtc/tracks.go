package webrtc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/webrtc/v4"

	"github.com/camgate/camgate/gateway/stream"
)

// variantTracks are the local tracks of one camera variant, shared by every
// peer watching it, and the pump that feeds them from one stream reader.
// It lives from its first peer to its last (users counts peers being set up
// too), holding one hub reference meanwhile.
type variantTracks struct {
	s       *Server
	key     string
	camera  string
	variant string // the variant read: VariantVideo when audio is not forwarded

	video *sharedTrack
	audio *sharedTrack // nil: no WebRTC-capable audio

	// outs[i] writes variant media i (nil: not forwarded). Owned by the
	// pump goroutine once started.
	outs []*mediaOut

	cancel context.CancelFunc

	// guarded by s.mu
	users int
	peers map[*peer]struct{}
}

// audioCodec returns the WebRTC codec of a stream audio format, if any;
// with transcode, AAC-LC is Opus.
func audioCodec(f format.Format, transcode bool) (webrtc.RTPCodecCapability, bool) {
	switch f := f.(type) {
	case *format.Opus:
		return opusCodec, true
	case *format.MPEG4Audio:
		if transcode && transcodable(f) {
			return opusCodec, true
		}
	case *format.G711:
		if f.SampleRate != 8000 || f.ChannelCount != 1 {
			return webrtc.RTPCodecCapability{}, false
		}
		if f.MULaw {
			return pcmuCodec, true
		}
		return pcmaCodec, true
	}
	return webrtc.RTPCodecCapability{}, false
}

// videoCodec returns the WebRTC codec of a stream video format, if any.
func videoCodec(f format.Format) (webrtc.RTPCodecCapability, bool) {
	switch f.(type) {
	case *format.H264:
		return h264Codec, true
	case *format.H265:
		return h265Codec, true
	}
	return webrtc.RTPCodecCapability{}, false
}

// mediaSet is where a variant's WebRTC-capable medias are.
type mediaSet struct {
	video, audio          int // media indexes; -1: none
	videoCaps, audioCaps  webrtc.RTPCodecCapability
	otherVideo, lostAudio string             // codecs WebRTC cannot carry ("" if none)
	aac                   *format.MPEG4Audio // the audio, when it is AAC to transcode
}

// findMedias returns the first H264 or H265 video media and the first
// WebRTC-capable audio media (with transcode, AAC too), and names the
// codecs of those it cannot carry.
func findMedias(desc *description.Session, transcode bool) mediaSet {
	ms := mediaSet{video: -1, audio: -1}
	for i, m := range desc.Medias {
		if len(m.Formats) == 0 {
			continue
		}
		switch m.Type {
		case description.MediaTypeVideo:
			if c, ok := videoCodec(m.Formats[0]); ok && ms.video < 0 {
				ms.video, ms.videoCaps = i, c
			} else if !ok && ms.otherVideo == "" {
				ms.otherVideo = m.Formats[0].Codec()
			}
		case description.MediaTypeAudio:
			if c, ok := audioCodec(m.Formats[0], transcode); ok && ms.audio < 0 {
				ms.audio, ms.audioCaps = i, c
				ms.aac, _ = m.Formats[0].(*format.MPEG4Audio)
			} else if !ok && ms.lostAudio == "" {
				ms.lostAudio = m.Formats[0].Codec()
			}
		}
	}
	return ms
}

// errNoVideo is why a variant without H264/H265 video cannot be watched.
func (ms mediaSet) errNoVideo(camera string) error {
	if ms.otherVideo != "" {
		return fmt.Errorf("%w: camera %s sends %s video (WebRTC viewers get H264 or H265)", ErrNotPlayable, camera, ms.otherVideo)
	}
	return fmt.Errorf("%w: camera %s has no video", ErrNotPlayable, camera)
}

// variantFor picks the variant to read for a ticket's variant: the full one
// only when its audio can be forwarded, so that viewers with `sound` of a
// camera with AAC audio share the video-only tracks.
func variantFor(st *stream.Stream, ticketVariant string, transcode bool) string {
	if ticketVariant != stream.VariantFull {
		return stream.VariantVideo
	}
	if findMedias(st.Full.Desc, transcode).audio < 0 {
		return stream.VariantVideo
	}
	return stream.VariantFull
}

// joinTracks returns the tracks of camera's variant, counting the caller
// as a user; release is the caller's hub reference, which the tracks take
// over when they are created here (and which is dropped otherwise).
func (s *Server) joinTracks(camera, variant string, st *stream.Stream, release func()) (*variantTracks, error) {
	key := camera + "\x00" + variant
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		release()
		return nil, errServerClosed
	}
	if vt := s.tracks[key]; vt != nil {
		vt.users++
		s.mu.Unlock()
		release()
		return vt, nil
	}
	vt, err := newVariantTracks(s, key, camera, variant, st.Variant(variant).Desc)
	if err != nil {
		s.mu.Unlock()
		release()
		return nil, err
	}
	vt.users = 1
	s.tracks[key] = vt
	ctx, cancel := context.WithCancel(s.ctx)
	vt.cancel = cancel
	s.wg.Add(1)
	s.mu.Unlock()
	go vt.run(ctx, st, release)
	return vt, nil
}

var errServerClosed = errors.New("webrtc server closed")

// leaveTracks drops one user; the last one stops the pump.
func (s *Server) leaveTracks(vt *variantTracks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vt.users--
	if vt.users > 0 {
		return
	}
	if s.tracks[vt.key] == vt {
		delete(s.tracks, vt.key)
	}
	vt.cancel()
}

func newVariantTracks(s *Server, key, camera, variant string, desc *description.Session) (*variantTracks, error) {
	vt := &variantTracks{s: s, key: key, camera: camera, variant: variant, peers: make(map[*peer]struct{})}
	ms := findMedias(desc, s.transcode)
	videoIdx, audioIdx, audioCaps := ms.video, ms.audio, ms.audioCaps
	if videoIdx < 0 {
		return nil, ms.errNoVideo(camera)
	}
	// One stream id for both tracks: browsers synchronize tracks of a stream.
	const streamID = "camgate"
	var err error
	if vt.video, err = newSharedTrack(ms.videoCaps, "video", streamID, true); err != nil {
		return nil, fmt.Errorf("webrtc: video track: %w", err)
	}
	vt.outs = make([]*mediaOut, len(desc.Medias))
	vt.outs[videoIdx] = &mediaOut{w: vt.video, mime: ms.videoCaps.MimeType, clockRate: 90000,
		video: true, h264: ms.videoCaps.MimeType == webrtc.MimeTypeH264}
	if variant == stream.VariantFull && audioIdx >= 0 {
		if vt.audio, err = newSharedTrack(audioCaps, "audio", streamID, false); err != nil {
			return nil, fmt.Errorf("webrtc: audio track: %w", err)
		}
		vt.outs[audioIdx] = s.newAudioOut(vt.audio, audioCaps, ms.aac, camera)
	}
	return vt, nil
}

// run pumps the variant into the tracks until the last peer leaves. When
// the hub ends the stream (camera reset, source changed), it acquires the
// new one and carries on with the same tracks, so peers keep playing;
// when that fails, or the new stream cannot feed these tracks, every peer
// of the variant is closed.
func (vt *variantTracks) run(ctx context.Context, st *stream.Stream, release func()) {
	defer vt.s.wg.Done()
	defer vt.closeOuts()
	log := vt.s.Logger.With("camera", vt.camera, "variant", vt.variant)
	for {
		err := vt.pump(ctx, st)
		release()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrBFrames) {
			vt.s.mu.Lock()
			vt.s.reordered[vt.camera] = st
			vt.s.mu.Unlock()
			log.Warn("webrtc: refusing the camera's viewers", "error", err)
			vt.fail(err.Error())
			return
		}
		log.Info("webrtc: stream ended, re-acquiring", "error", err)
		st, release, err = vt.s.Hub.Acquire(ctx, vt.camera)
		if err == nil {
			if err = vt.remap(st.Variant(vt.variant).Desc); err != nil {
				release()
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("webrtc: stream lost, closing its viewers", "error", err)
				vt.fail("stream lost: " + err.Error())
			}
			return
		}
	}
}

// pump reads one stream of the variant.
func (vt *variantTracks) pump(ctx context.Context, st *stream.Stream) error {
	r := stream.NewReader(vt.s.QueueSize)
	if err := st.Variant(vt.variant).AddReader(r); err != nil {
		return err
	}
	defer r.Close()
	return r.Run(ctx, vt.writeBatch)
}

// writeBatch is the per-packet hot path: one WriteRTP per packet, which
// pion encrypts for every bound peer.
func (vt *variantTracks) writeBatch(batch []*stream.Packet) error {
	if b := vt.s.batch; b != nil {
		// Every peer's datagrams of the batch leave in a few sendmmsg.
		b.begin()
		defer b.end()
	}
	now := time.Now()
	for _, p := range batch {
		if p.Media < len(vt.outs) {
			if o := vt.outs[p.Media]; o != nil {
				o.write(p, now)
				if o.reordered {
					return fmt.Errorf("%w: camera %s", ErrBFrames, vt.camera)
				}
			}
		}
	}
	return nil
}

// remap points the outputs at the medias of a new stream (pump goroutine,
// between streams).
func (vt *variantTracks) remap(desc *description.Session) error {
	ms := findMedias(desc, vt.s.transcode)
	videoIdx, audioIdx, audioCaps := ms.video, ms.audio, ms.audioCaps
	if videoIdx < 0 {
		return ms.errNoVideo(vt.camera)
	}
	var video, audio *mediaOut
	for _, o := range vt.outs {
		switch {
		case o == nil:
		case o.video:
			video = o
		default:
			audio = o
		}
	}
	if video.mime != ms.videoCaps.MimeType {
		// The peers negotiated the old codec: they must start again.
		return fmt.Errorf("%w: camera %s switched its video from %s to %s", ErrNotPlayable, vt.camera, video.mime, ms.videoCaps.MimeType)
	}
	vt.outs = make([]*mediaOut, len(desc.Medias))
	video.rebase = true
	vt.outs[videoIdx] = video
	switch {
	case audio == nil:
	case audioIdx >= 0 && audio.aac == nil && ms.aac == nil && audioCaps.MimeType == audio.mime:
		audio.rebase = true
		vt.outs[audioIdx] = audio
	case audioIdx >= 0 && audio.aac != nil && ms.aac != nil && audio.aac.sameInput(ms.aac):
		audio.aac.rebase()
		vt.outs[audioIdx] = audio
	default:
		audio.close() // the peers' audio stays silent until they reconnect
	}
	return nil
}

// fail closes every peer of the variant and forgets it, so that the next
// viewer starts afresh.
func (vt *variantTracks) fail(reason string) {
	s := vt.s
	s.mu.Lock()
	if s.tracks[vt.key] == vt {
		delete(s.tracks, vt.key)
	}
	peers := make([]*peer, 0, len(vt.peers))
	for p := range vt.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.close(reason)
	}
}
