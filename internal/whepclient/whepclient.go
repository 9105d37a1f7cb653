// Package whepclient builds the pion peer connections that tests and the
// bench use as WHEP viewers on loopback: one API for every viewer, and a
// peer that receives video and audio.
package whepclient

import (
	"fmt"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// API returns a pion API for loopback viewers: IPv4 UDP host candidates on
// loopback included, no mDNS, pion's default codecs. logger may be nil
// (pion's own logging).
func API(logger logging.LoggerFactory) (*webrtc.API, error) {
	return APIVideo(logger)
}

// APIVideo is API offering only the video codecs named (webrtc.MimeTypeH264,
// webrtc.MimeTypeH265), with Opus, PCMU and PCMA audio: a browser without
// H265, say. No names: pion's default codecs.
func APIVideo(logger logging.LoggerFactory, videoMimes ...string) (*webrtc.API, error) {
	var se webrtc.SettingEngine
	if logger != nil {
		se.LoggerFactory = logger
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	me := &webrtc.MediaEngine{}
	if len(videoMimes) == 0 {
		if err := me.RegisterDefaultCodecs(); err != nil {
			return nil, err
		}
	} else if err := registerCodecs(me, videoMimes); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)), nil
}

// RecvOnly returns a peer connection of api that receives one video and one
// audio track, as a WHEP player offers.
func RecvOnly(api *webrtc.API) (*webrtc.PeerConnection, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = pc.Close()
			return nil, err
		}
	}
	return pc, nil
}

func registerCodecs(me *webrtc.MediaEngine, videoMimes []string) error {
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	video := map[string]webrtc.RTPCodecParameters{
		webrtc.MimeTypeH264: {PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}},
		webrtc.MimeTypeH265: {PayloadType: 116, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265, ClockRate: 90000, RTCPFeedback: fb}},
	}
	for _, m := range videoMimes {
		c, ok := video[m]
		if !ok {
			return fmt.Errorf("whepclient: unknown video codec %q", m)
		}
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	for _, c := range []webrtc.RTPCodecParameters{
		{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}},
		{PayloadType: 0, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}},
		{PayloadType: 8, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return err
		}
	}
	return nil
}
