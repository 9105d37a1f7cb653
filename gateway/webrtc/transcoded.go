package webrtc

import (
	"bytes"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/camgate/camgate/gateway/transcode"
)

// transcodable reports whether the AAC can be made Opus: AAC-LC with its
// configuration in the SDP.
func transcodable(f *format.MPEG4Audio) bool {
	return f.Config != nil && f.Config.Type == mpeg4audio.ObjectTypeAACLC
}

// newAudioOut is the output of a variant's audio media: forwarded as the
// camera sends it, or, for AAC, through one transcoder to Opus for every
// peer of the variant. Nil when the transcoder cannot be had (the peers'
// audio stays silent; the reason is logged).
func (s *Server) newAudioOut(w *sharedTrack, caps webrtc.RTPCodecCapability, aac *format.MPEG4Audio, camera string) *mediaOut {
	o := &mediaOut{w: w, mime: caps.MimeType, clockRate: caps.ClockRate}
	if aac == nil {
		return o
	}
	dec, err := aac.CreateDecoder()
	if err == nil {
		a := &aacOut{cfg: *aac.Config, dec: dec, tc: &transcode.Audio{
			In: transcode.Input{AAC: aac.Config}, Out: transcode.OutOpus, FFmpeg: s.FFmpeg,
			Logger: s.Logger.With("camera", camera),
		}}
		if err = a.tc.Start(); err == nil {
			s.Logger.Info("webrtc: transcoding the camera's AAC audio to Opus", "camera", camera)
			o.aac = a
			return o
		}
	}
	s.Logger.Warn("webrtc: cannot transcode the camera's AAC audio: its viewers get video only", "camera", camera, "error", err)
	return nil
}

// aacOut carries a camera's AAC through its transcoder. Owned by the
// variant's pump goroutine.
type aacOut struct {
	cfg mpeg4audio.AudioSpecificConfig
	dec *rtpmpeg4audio.Decoder
	tc  *transcode.Audio
	in  rtp.Packet

	started bool
	lastTS  uint32
	pts     int64 // of the last packet, in the camera's clock
}

// sameInput reports whether f is the AAC this output transcodes.
func (a *aacOut) sameInput(f *format.MPEG4Audio) bool {
	if f.Config == nil {
		return false
	}
	x, err1 := a.cfg.Marshal()
	y, err2 := f.Config.Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// rebase starts a new upstream stream: its timestamps are a new timeline,
// which the transcoder meets with a restart.
func (a *aacOut) rebase() { a.started = false }

// write feeds one camera packet to the transcoder and sends the Opus
// packets it has ready, on the camera's timeline (48 kHz).
func (a *aacOut) write(o *mediaOut, b []byte) {
	// The decoder keeps fragments of an AU across packets, and the
	// stream's buffers are reused: the packet is copied.
	if err := a.in.Unmarshal(bytes.Clone(b)); err != nil {
		return
	}
	ts := a.in.Timestamp
	if a.started {
		a.pts += int64(int32(ts - a.lastTS))
	} else {
		a.started, a.pts = true, int64(ts)
	}
	a.lastTS = ts
	if aus, err := a.dec.Decode(&a.in); err == nil {
		for i, au := range aus {
			a.tc.Write(a.pts+int64(i)*mpeg4audio.SamplesPerAccessUnit, au)
		}
	}
	a.tc.Drain(func(f transcode.Frame) {
		o.pkt.Header = rtp.Header{Version: 2, Timestamp: uint32(f.PTS)}
		o.send(f.AU, false)
	})
}

// close stops a transcoded output's ffmpeg (other outputs have none).
func (o *mediaOut) close() {
	if o != nil && o.aac != nil {
		o.aac.tc.Close()
	}
}

// closeOuts stops the variant's transcoders (pump goroutine, at its end).
func (vt *variantTracks) closeOuts() {
	for _, o := range vt.outs {
		o.close()
	}
}
