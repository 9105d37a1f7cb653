// Package webrtc serves live cameras to WebRTC viewers over WHEP
// (POST /whep/{camera} with an SDP offer, answered with a `Location` that
// PATCH (trickle ICE) and DELETE address). pion/webrtc does the transport.
//
// Every viewer is admitted through the gateway's Admitter and registered in
// the session registry, which closes its peer connection when access is
// lost. H264 video is forwarded as it comes from the camera (oversized
// packets are re-fragmented once, for all viewers), H265 video as the camera
// packetized it, to viewers whose offer has H265. Refusals name the reason:
// 415 when the offer cannot receive the camera's video codec, 400 when no
// viewer could (MJPEG, say) or the video has B-frames (browsers play those
// at about a frame a second). Audio is offered only when the camera's codec
// is WebRTC-capable (Opus, G.711) and the viewer has `sound`; AAC becomes
// Opus with TranscodeAudio (gateway/transcode: one ffmpeg per camera's
// tracks, not per viewer), else the viewer gets video only, and that is
// logged. Each camera variant has one set of local tracks fed by a single
// stream reader: pion fans every packet out to the bound peers, so the cost
// per viewer is encryption and a send, not packetization.
package webrtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
)

// Hub is what the server needs from the stream hub.
type Hub interface {
	Acquire(ctx context.Context, camera string) (*stream.Stream, func(), error)
}

// Sessions is what the server needs from the session registry.
type Sessions interface {
	Add(s *session.Session)
	Remove(id, reason string)
}

// Defaults of the Server fields.
const (
	DefaultMaxOfferSize     = 64 << 10
	DefaultHandshakeTimeout = 15 * time.Second
	DefaultGatherTimeout    = 5 * time.Second
)

// Server is the WHEP endpoint. Its handlers are routed by the HTTP front
// (see Handle).
type Server struct {
	// Hub provides camera streams (required).
	Hub Hub
	// Admitter decides who may watch (required).
	Admitter session.Admitter
	// Sessions registers viewer sessions (required).
	Sessions Sessions
	// UDPMuxAddress, when set (e.g. ":8189"), carries all ICE traffic on that
	// single UDP port. Empty: each peer connection uses an ephemeral port.
	UDPMuxAddress string
	// PortMin and PortMax bound the ephemeral UDP ports when UDPMuxAddress is
	// empty (both zero: any port).
	PortMin, PortMax uint16
	// NAT1To1IPs are public IPs announced instead of the host's own
	// addresses, for a server behind a 1:1 NAT (e.g. a cloud VM).
	NAT1To1IPs []string
	// IncludeLoopback adds host candidates on loopback interfaces (tests,
	// a player on the same host).
	IncludeLoopback bool
	// AllowOrigin is the CORS Access-Control-Allow-Origin (default "*").
	AllowOrigin string
	// MaxOfferSize bounds the SDP offer body (default 64 KiB; larger is a 413).
	MaxOfferSize int
	// HandshakeTimeout ends a viewer whose ICE and DTLS did not connect this
	// long after the answer (default 15 s).
	HandshakeTimeout time.Duration
	// GatherTimeout bounds the wait for local ICE candidates before the
	// answer is sent (default 5 s).
	GatherTimeout time.Duration
	// QueueSize is the packet queue of each variant's reader (default
	// stream.DefaultQueueSize).
	QueueSize int
	// TranscodeAudio makes a camera's AAC audio Opus (one ffmpeg process
	// per camera whose WebRTC with sound is being watched). FFmpeg is the
	// program (default "ffmpeg" on PATH); without it AAC cameras are
	// served video-only, as with TranscodeAudio off.
	TranscodeAudio bool
	FFmpeg         string
	// Logger (default: discard).
	Logger *slog.Logger

	transcode bool // TranscodeAudio, and ffmpeg was found

	allowOrigin atomic.Pointer[string] // AllowOrigin, then SetAllowOrigin's

	api   *webrtc.API
	mux   *ice.UDPMuxDefault
	batch *batchConn // the mux's socket; nil without a mux

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex            // guards peers, tracks, reordered and every variantTracks' users/peers
	peers  map[resourceKey]*peer // by the digest of their resource URL's secret
	tracks map[string]*variantTracks
	// reordered holds, by camera, the stream whose video was seen to have
	// B-frames: viewers of that stream are refused until the hub has a new
	// one (the camera may be reconfigured).
	reordered map[string]*stream.Stream
}

// Initialize applies defaults, validates, and builds the WebRTC API (and
// the UDP mux, when configured) shared by every peer connection.
func (s *Server) Initialize() error {
	if s.Hub == nil || s.Admitter == nil || s.Sessions == nil {
		return errors.New("webrtc server: Hub, Admitter and Sessions are required")
	}
	if s.AllowOrigin == "" {
		s.AllowOrigin = "*"
	}
	s.SetAllowOrigin(s.AllowOrigin)
	if s.MaxOfferSize <= 0 {
		s.MaxOfferSize = DefaultMaxOfferSize
	}
	if s.HandshakeTimeout <= 0 {
		s.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if s.GatherTimeout <= 0 {
		s.GatherTimeout = DefaultGatherTimeout
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.TranscodeAudio {
		if s.FFmpeg == "" {
			s.FFmpeg = "ffmpeg"
		}
		_, err := exec.LookPath(s.FFmpeg)
		s.transcode = err == nil
		if err != nil {
			s.Logger.Warn("webrtc: ffmpeg is not installed: viewers of cameras with AAC audio get video only", "error", err)
		}
	}
	if s.PortMin > s.PortMax {
		return fmt.Errorf("webrtc server: PortMin %d is above PortMax %d", s.PortMin, s.PortMax)
	}
	for _, ip := range s.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("webrtc server: NAT1To1IPs: %q is not an IP address", ip)
		}
	}
	se, err := s.settingEngine()
	if err != nil {
		return err
	}
	me, ir, err := newMediaEngine(pionLoggers{s.Logger})
	if err != nil {
		s.closeMux()
		return err
	}
	s.api = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.peers = make(map[resourceKey]*peer)
	s.tracks = make(map[string]*variantTracks)
	s.reordered = make(map[string]*stream.Stream)
	return nil
}

// SetAllowOrigin changes AllowOrigin for the requests that follow ("" is
// "*"); safe while serving (a configuration reload).
func (s *Server) SetAllowOrigin(origin string) {
	if origin == "" {
		origin = "*"
	}
	s.allowOrigin.Store(&origin)
}

// settingEngine builds the transport settings once for all peers.
func (s *Server) settingEngine() (webrtc.SettingEngine, error) {
	var se webrtc.SettingEngine
	se.LoggerFactory = pionLoggers{s.Logger}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	// mDNS would open a multicast socket per peer and only helps on a LAN;
	// browsers' .local candidates are reached as peer-reflexive anyway.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(s.IncludeLoopback)
	// AES-GCM first: cheaper per packet than AES-CM + HMAC-SHA1 on CPUs
	// with AES-NI, and every current browser supports it.
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	// A viewer that vanished without DELETE is released after ~15 s.
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	if len(s.NAT1To1IPs) > 0 {
		err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        s.NAT1To1IPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		})
		if err != nil {
			return se, fmt.Errorf("webrtc server: NAT1To1IPs: %w", err)
		}
	}
	if s.UDPMuxAddress == "" {
		if s.PortMax != 0 {
			if err := se.SetEphemeralUDPPortRange(s.PortMin, s.PortMax); err != nil {
				return se, fmt.Errorf("webrtc server: port range: %w", err)
			}
		}
		return se, nil
	}
	conn, err := net.ListenPacket("udp", s.UDPMuxAddress)
	if err != nil {
		return se, fmt.Errorf("webrtc server: ICE UDP %s: %w", s.UDPMuxAddress, err)
	}
	s.batch = newBatchConn(conn.(*net.UDPConn))
	params := ice.UDPMuxParams{Logger: pionLoggers{s.Logger}.NewLogger("udpmux"), UDPConn: s.batch}
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.IsUnspecified() {
		// The mux then announces every interface's address.
		if params.Net, err = stdnet.NewNet(); err != nil {
			_ = conn.Close()
			return se, fmt.Errorf("webrtc server: interfaces: %w", err)
		}
	}
	s.mux = ice.NewUDPMuxDefault(params)
	se.SetICEUDPMux(s.mux)
	return se, nil
}

func (s *Server) closeMux() {
	if s.mux != nil {
		_ = s.mux.Close()
	}
}

// UDPMuxAddr returns the bound ICE UDP address, or nil without a mux.
func (s *Server) UDPMuxAddr() net.Addr {
	if s.mux == nil {
		return nil
	}
	if addrs := s.mux.GetListenAddresses(); len(addrs) > 0 {
		return addrs[0]
	}
	return nil
}

// SendStats reports how the ICE mux socket sends: whether UDP GSO is in
// use, and how many datagrams the kernel refused. Without a mux (a port
// range) both are zero.
func (s *Server) SendStats() (gso bool, refused uint64) {
	if s.batch == nil {
		return false, 0
	}
	return s.batch.gso.Load(), s.batch.failed.Load()
}

// Close ends every viewer and stops every track writer.
func (s *Server) Close() {
	s.mu.Lock()
	s.cancel() // under s.mu: nothing joins the wait group after this

	peers := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.close("server closing")
	}
	s.wg.Wait()
	s.closeMux()
}

// H264 as browsers negotiate it: packetization-mode 1 (FU-A/STAP-A, what
// cameras send) and constrained baseline 3.1, which every browser offers.
// Browsers decode the higher profiles cameras use under this negotiation
// too; the profile only has to match for the answer to be accepted.
const h264Fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"

var (
	h264Codec = webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: h264Fmtp,
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}},
	}
	// H265 as pion and Safari/Chromium (with hardware decoding) negotiate
	// it: RFC 7798 packets, forwarded as the camera sends them.
	h265Codec = webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH265, ClockRate: 90000,
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}},
	}
	opusCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}
	pcmuCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}
	pcmaCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}
)

// newMediaEngine registers what camgate sends, and the one interceptor
// that runs per peer: sender reports, which browsers need to synchronize
// audio with video. NACKs are answered by sharedTrack from one history per
// track rather than by pion's responder, which copies every packet per peer.
func newMediaEngine(lf pionLoggers) (*webrtc.MediaEngine, *interceptor.Registry, error) {
	me := &webrtc.MediaEngine{}
	codecs := []struct {
		c    webrtc.RTPCodecCapability
		pt   webrtc.PayloadType
		kind webrtc.RTPCodecType
	}{
		{h264Codec, 96, webrtc.RTPCodecTypeVideo},
		{h265Codec, 116, webrtc.RTPCodecTypeVideo},
		{opusCodec, 111, webrtc.RTPCodecTypeAudio},
		{pcmuCodec, 0, webrtc.RTPCodecTypeAudio},
		{pcmaCodec, 8, webrtc.RTPCodecTypeAudio},
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: c.c, PayloadType: c.pt}, c.kind); err != nil {
			return nil, nil, fmt.Errorf("webrtc: register %s: %w", c.c.MimeType, err)
		}
	}
	ir := &interceptor.Registry{}
	sender, err := report.NewSenderInterceptor(report.WithSenderLoggerFactory(lf))
	if err != nil {
		return nil, nil, fmt.Errorf("webrtc: sender reports: %w", err)
	}
	ir.Add(sender)
	return me, ir, nil
}
