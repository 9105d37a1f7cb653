// Package whepclient builds the pion peer connections that tests and the
// bench use as WHEP viewers on loopback: one API for every viewer, and a
// peer that receives video and audio.
package whepclient

import (
	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// API returns a pion API for loopback viewers: IPv4 UDP host candidates on
// loopback included, no mDNS, pion's default codecs. logger may be nil
// (pion's own logging).
func API(logger logging.LoggerFactory) (*webrtc.API, error) {
	var se webrtc.SettingEngine
	if logger != nil {
		se.LoggerFactory = logger
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
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
