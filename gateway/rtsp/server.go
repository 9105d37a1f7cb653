// Package rtsp serves live cameras to RTSP viewers (ffplay, VLC, NVRs) at
// rtsp://HOST:8554/{camera}. gortsplib handles the protocol (and parses
// the Authorization header); camgate admits each session at DESCRIBE, SETUP
// and PLAY through the gateway's Admitter (a token: ?token= or the Basic
// password) or its CredentialAdmitter (a stream credential: Basic, or MD5
// Digest against the nonce this connection was challenged with, in
// camgate's realm — the 401's challenge is camgate's, see OnResponse),
// serves the `video` variant (no audio media in the SDP) to viewers without
// `sound`, registers every session so a revoke ends it, and writes TCP media
// itself: one vectored write per batch per viewer, from the shared packets.
package rtsp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"

	"github.com/camgate/camgate/gateway/creds"
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

// CredentialAdmitter admits viewers that present a stream credential (a
// camgate username and password) instead of a token.
type CredentialAdmitter interface {
	AdmitBasic(ctx context.Context, username, password, camera string) (session.Ticket, error)
	AdmitDigest(ctx context.Context, d creds.Digest, camera string) (session.Ticket, error)
}

// Server is the RTSP server for viewers.
type Server struct {
	// Address to listen on (default ":8554").
	Address string
	// TLSConfig, when set, makes this an RTSPS server (rtsps://). TLS is
	// terminated in front of gortsplib, so media still goes out in one write
	// per batch (one TLS record) rather than one per packet.
	TLSConfig *tls.Config
	// UDPRTPAddress and UDPRTCPAddress enable UDP transport when both set.
	UDPRTPAddress, UDPRTCPAddress string
	// Hub provides camera streams (required).
	Hub Hub
	// Admitter decides who may watch (required).
	Admitter session.Admitter
	// Sessions registers viewer sessions (required).
	Sessions Sessions
	// Credentials admits stream credentials (default: none; a camgate
	// username is then refused like a bad token).
	Credentials CredentialAdmitter
	// AuthMethods are the schemes a 401 challenges with, in order (default
	// Basic alone). Digest (auth.VerifyMethodDigestMD5) works for stream
	// credentials only: a token cannot answer it, and clients that see both
	// prefer Digest (ffmpeg does), so offering it moves token users of those
	// clients to ?token=.
	AuthMethods []auth.VerifyMethod
	// Realm is the Digest realm (default creds.DefaultRealm); it must be the
	// one the credentials' HA1 was made for.
	Realm string
	// QueueSize is each viewer's packet queue (default stream.DefaultQueueSize).
	QueueSize int
	// WriteTimeout ends a viewer whose socket accepts nothing for this long (default 10 s).
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for this long while
	// no session plays on it: before its first request and between requests
	// (default 10 s). A playing session is not affected; its connection is
	// timed out by gortsplib after 60 s without RTCP or a keepalive, the
	// session timeout it announces to clients.
	IdleTimeout time.Duration
	// MaxConnsPerIP caps the open connections from one client address (of an
	// IPv6 client: its /64); beyond it a new connection is closed at once
	// (logged once a minute per address). 0 = no cap.
	MaxConnsPerIP int
	// Logger (default: discard).
	Logger *slog.Logger

	srv    *gortsplib.Server
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex // guards cams
	cams map[string]*camState

	limit *connLimiter // nil when MaxConnsPerIP is 0

	bytesSent atomic.Uint64 // media bytes written to TCP viewers
	udpJoins  udpJoins      // UDP viewers replaying their GOP before joining the shared stream
	udpRTP    *net.UDPConn  // gortsplib's RTP socket (nil without UDP), set by Initialize
}

// ConnsRefused returns how many connections the per-address cap refused.
func (s *Server) ConnsRefused() uint64 {
	if s.limit == nil {
		return 0
	}
	return s.limit.refused.Load()
}

// BytesSent returns the media bytes written to TCP viewers so far.
func (s *Server) BytesSent() uint64 { return s.bytesSent.Load() }

// Initialize starts listening.
func (s *Server) Initialize() error {
	if s.Hub == nil || s.Admitter == nil || s.Sessions == nil {
		return errors.New("rtsp server: Hub, Admitter and Sessions are required")
	}
	if s.Address == "" {
		s.Address = ":8554"
	}
	if s.WriteTimeout <= 0 {
		s.WriteTimeout = 10 * time.Second
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = 10 * time.Second
	}
	if s.MaxConnsPerIP < 0 {
		return errors.New("rtsp server: MaxConnsPerIP must not be negative")
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if len(s.AuthMethods) == 0 {
		s.AuthMethods = []auth.VerifyMethod{auth.VerifyMethodBasic}
	}
	for _, m := range s.AuthMethods {
		if m != auth.VerifyMethodBasic && m != auth.VerifyMethodDigestMD5 {
			return errors.New("rtsp server: AuthMethods: only Basic and MD5 Digest are supported (ffmpeg answers no SHA-256 Digest)")
		}
	}
	if s.Realm == "" {
		s.Realm = creds.DefaultRealm
	}
	if s.MaxConnsPerIP > 0 {
		s.limit = newConnLimiter(s.MaxConnsPerIP, s.Logger)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cams = make(map[string]*camState)
	s.srv = &gortsplib.Server{
		Handler:        &handler{s: s},
		RTSPAddress:    s.Address,
		UDPRTPAddress:  s.UDPRTPAddress,
		UDPRTCPAddress: s.UDPRTCPAddress,
		WriteTimeout:   s.WriteTimeout,
		AuthMethods:    s.AuthMethods,
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			if s.TLSConfig != nil {
				l = tls.NewListener(l, s.TLSConfig)
			}
			return mediaListener{Listener: l, idle: s.IdleTimeout, limit: s.limit}, nil
		},
		ListenPacket: s.listenPacket,
	}
	if s.UDPRTPAddress == "" || s.UDPRTCPAddress == "" {
		s.srv.UDPRTPAddress, s.srv.UDPRTCPAddress = "", ""
	}
	if err := s.srv.Start(); err != nil {
		s.cancel()
		return fmt.Errorf("rtsp: listen %s: %w", s.Address, err)
	}
	return nil
}

// listenPacket opens gortsplib's UDP sockets; the RTP one holds back the
// shared streams' packets to viewers still replaying their GOP (udp_join.go).
func (s *Server) listenPacket(network, address string) (net.PacketConn, error) {
	pc, err := net.ListenPacket(network, address)
	if err != nil || address != s.srv.UDPRTPAddress {
		return pc, err
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return pc, nil
	}
	s.udpRTP = uc
	return &udpConn{UDPConn: uc, joins: &s.udpJoins}, nil
}

// Addr returns the bound TCP address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.srv.NetListener().Addr() }

// Close stops the server and ends every RTSP session.
func (s *Server) Close() {
	s.cancel()
	s.srv.Close()
	s.mu.Lock()
	for _, cs := range s.cams {
		cs.close()
	}
	s.cams = map[string]*camState{}
	s.mu.Unlock()
}

// camState returns the RTSP streams for st, building them on first use or
// when the hub has replaced the camera's stream.
func (s *Server) camState(camera string, st *stream.Stream) (*camState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.cams[camera]; cs != nil {
		if cs.stream == st {
			return cs, nil
		}
		cs.close()
		delete(s.cams, camera)
	}
	cs, err := newCamState(s.srv, st)
	if err != nil {
		return nil, err
	}
	s.cams[camera] = cs
	return cs, nil
}

// cameraFrom maps a request path to a camera id ("" when malformed).
func cameraFrom(path string) string {
	cam := strings.TrimPrefix(path, "/")
	if cam == "" || strings.ContainsAny(cam, "/\\") || strings.HasPrefix(cam, ".") {
		return ""
	}
	return cam
}

// admit runs the admission for a request and maps its errors to an RTSP
// answer, in one place.
func (s *Server) admit(conn *gortsplib.ServerConn, req *base.Request, path, query string) (session.Ticket, *base.Response, error) {
	cam := cameraFrom(path)
	if cam == "" {
		return session.Ticket{}, &base.Response{StatusCode: base.StatusNotFound}, session.ErrUnknownCamera
	}
	ctx := session.WithProtocol(session.WithRemote(s.ctx, conn.NetConn().RemoteAddr()), session.ProtocolRTSP)
	var (
		t   session.Ticket
		err error
	)
	switch c := credentialFrom(req, query); {
	case c.basic && !s.offers(auth.VerifyMethodBasic), c.digest != nil && !s.offers(auth.VerifyMethodDigestMD5):
		// A scheme the operator did not offer (e.g. Basic, whose password
		// crosses plain RTSP readable, on a Digest-only server) is refused.
		err = fmt.Errorf("%w: that authentication scheme is not offered here", session.ErrUnauthenticated)
	case c.digest != nil:
		t, err = s.admitDigest(ctx, conn, req, c.digest, cam)
	case c.basicUser != "" && s.Credentials != nil:
		t, err = s.Credentials.AdmitBasic(ctx, c.basicUser, c.basicPass, cam)
	default:
		t, err = s.Admitter.Admit(ctx, c.token, cam)
	}
	if err != nil {
		return t, errorResponse(err), err
	}
	return t, nil, nil
}

func (s *Server) offers(m auth.VerifyMethod) bool { return slices.Contains(s.AuthMethods, m) }

func errorResponse(err error) *base.Response {
	switch {
	case errors.Is(err, session.ErrUnauthenticated):
		return &base.Response{StatusCode: base.StatusUnauthorized}
	case errors.Is(err, session.ErrForbidden):
		return &base.Response{StatusCode: base.StatusForbidden}
	case errors.Is(err, session.ErrUnknownCamera), errors.Is(err, stream.ErrUnknownCamera):
		return &base.Response{StatusCode: base.StatusNotFound}
	case errors.Is(err, session.ErrRateLimited):
		return &base.Response{StatusCode: statusTooManyRequests}
	default:
		return &base.Response{StatusCode: base.StatusServiceUnavailable}
	}
}

// statusTooManyRequests is HTTP's 429, which RTSP clients report as is.
const statusTooManyRequests base.StatusCode = 429

// rtspError makes gortsplib send WWW-Authenticate (no credentials) or close
// the connection (bad credentials) on a 401; other errors pass through.
func rtspError(err error) error {
	if errors.Is(err, session.ErrUnauthenticated) {
		return liberrors.ErrServerAuth{}
	}
	return err
}
