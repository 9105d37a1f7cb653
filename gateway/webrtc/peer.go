package webrtc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
)

// peer is one WHEP viewer: a peer connection bound to its variant's shared
// tracks. Its lifecycle state (closed, registration) and its ticket (which
// PATCH re-checks) are guarded by s.mu.
type peer struct {
	s        *Server
	id       string      // the registry's session id, shown to admins
	resource resourceKey // digest of the secret in the viewer's resource URL
	ticket   session.Ticket
	vt       *variantTracks
	ufrag    string // the viewer's ICE ufrag: trickle fragments must match it
	pc       *webrtc.PeerConnection
	timer    *time.Timer // handshake deadline

	closed bool // guarded by s.mu
}

// newPeer admits nothing: it sets up a peer connection for an admitted
// ticket and returns the secret of its resource URL and the SDP answer. The
// peer is registered (and counted as a session) only once the answer is
// ready.
//
// The secret is the last segment of the Location answered to the POST, which
// PATCH and DELETE must name: 128 random bits, unrelated to the session id
// the registry lists to admins, so seeing a session in GET /api/v1/sessions
// does not let anyone end or steer it.
func (s *Server) newPeer(ctx context.Context, t session.Ticket, offer string, info offerInfo, remote string) (*peer, string, string, error) {
	secret, key, err := newResourceSecret()
	if err != nil {
		return nil, "", "", err
	}
	st, release, err := s.Hub.Acquire(ctx, t.Camera)
	if err != nil {
		return nil, "", "", err
	}
	s.mu.Lock()
	reordered := s.reordered[t.Camera] == st
	s.mu.Unlock()
	if reordered {
		release()
		return nil, "", "", fmt.Errorf("%w: camera %s", ErrBFrames, t.Camera)
	}
	ms := findMedias(st.Full.Desc, s.transcode)
	if ms.video >= 0 && !info.accepts(ms.videoCaps.MimeType) {
		release()
		return nil, "", "", fmt.Errorf("%w: camera sends %s; the offer has %s",
			ErrCodecNotOffered, strings.TrimPrefix(ms.videoCaps.MimeType, "video/"), info.offered())
	}
	if t.Variant == stream.VariantFull && ms.audio < 0 && ms.lostAudio != "" {
		s.Logger.Info("webrtc: viewer gets no audio: the camera's audio codec is not a WebRTC one (no transcoding)",
			"camera", t.Camera, "audio", ms.lostAudio, "remote", remote)
	}
	vt, err := s.joinTracks(t.Camera, variantFor(st, t.Variant, s.transcode), st, release)
	if err != nil {
		return nil, "", "", err
	}
	p := &peer{s: s, id: session.NewID(), resource: key, ticket: t, vt: vt, ufrag: info.ufrag}
	answer, err := p.negotiate(offer, info)
	if err != nil {
		p.close("setup failed")
		return nil, "", "", err
	}
	s.mu.Lock()
	if p.closed || s.ctx.Err() != nil || s.tracks[vt.key] != vt { // vt failed meanwhile
		reordered := s.reordered[t.Camera] == st
		s.mu.Unlock()
		if reordered {
			p.close("setup failed")
			return nil, "", "", fmt.Errorf("%w: camera %s", ErrBFrames, t.Camera)
		}
		p.close("closed during setup")
		return nil, "", "", fmt.Errorf("%w: peer closed during setup", errServerClosed)
	}
	s.peers[p.resource] = p
	vt.peers[p] = struct{}{}
	p.timer = time.AfterFunc(s.HandshakeTimeout, func() {
		if p.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
			p.close("ICE/DTLS did not connect in time")
		}
	})
	s.mu.Unlock()
	s.Sessions.Add(&session.Session{
		ID:         p.id,
		Protocol:   session.ProtocolWebRTC,
		Camera:     t.Camera,
		Subject:    t.Subject,
		Link:       t.Link,
		Variant:    t.Variant,
		Remote:     remote,
		ValidUntil: t.ValidUntil,
		Kick:       p.close,
	})
	if p.isClosed() { // closed between registration and Add
		s.Sessions.Remove(p.id, "closed during setup")
	}
	return p, secret, answer, nil
}

// negotiate creates the peer connection and answers the offer, with every
// local candidate in the answer (no trickle needed from the server side).
// pion parses the hostile part of the offer: a panic there must cost one
// request, not the gateway.
func (p *peer) negotiate(offer string, info offerInfo) (answer string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrBadOffer, r)
		}
	}()
	pc, err := p.s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	p.pc = pc
	pc.OnConnectionStateChange(p.onState)
	if err := p.addTrack(p.vt.video); err != nil {
		return "", err
	}
	if p.vt.audio != nil && info.audio {
		if err := p.addTrack(p.vt.audio); err != nil {
			return "", err
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	// Sections the viewer offered that camgate does not feed (audio without
	// `sound`, extra sections) are answered inactive: a "sendonly" section
	// without a track would still make a browser create an empty track.
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == nil || tr.Sender().Track() == nil {
			if err := tr.Stop(); err != nil {
				return "", fmt.Errorf("webrtc: stop unused transceiver: %w", err)
			}
		}
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	t := time.NewTimer(p.s.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return "", errors.New("webrtc: ICE gathering timed out")
	}
	return pc.LocalDescription().SDP, nil
}

// addTrack binds the shared track to this peer and reads the sender's
// RTCP: the viewer's NACKs are answered from the track's shared history.
func (p *peer) addTrack(track *sharedTrack) error {
	sender, err := p.pc.AddTrack(track)
	if err != nil {
		return fmt.Errorf("webrtc: add %s track: %w", track.Kind(), err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := sender.Read(buf)
			if err != nil {
				return // the peer connection closed
			}
			track.handleRTCP(buf[:n])
		}
	}()
	return nil
}

func (p *peer) onState(state webrtc.PeerConnectionState) {
	switch state {
	case webrtc.PeerConnectionStateConnected:
		p.s.Logger.Debug("webrtc: viewer connected", "session", p.id, "camera", p.ticket.Camera)
	case webrtc.PeerConnectionStateFailed:
		p.close("connection failed")
	case webrtc.PeerConnectionStateClosed:
		p.close("connection closed")
	}
}

func (p *peer) isClosed() bool {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.closed
}

// close ends the viewer: unregisters it, releases its share of the tracks
// and closes the peer connection (the viewer sees it closed). It is the
// session's Kick, safe to call more than once and from any goroutine.
func (p *peer) close(reason string) {
	s := p.s
	s.mu.Lock()
	if p.closed {
		s.mu.Unlock()
		return
	}
	p.closed = true
	if s.peers[p.resource] == p {
		delete(s.peers, p.resource)
	}
	delete(p.vt.peers, p)
	if p.timer != nil {
		p.timer.Stop()
	}
	s.mu.Unlock()
	s.Sessions.Remove(p.id, reason)
	s.leaveTracks(p.vt)
	if p.pc != nil {
		_ = p.pc.Close()
	}
	s.Logger.Debug("webrtc: viewer closed", "session", p.id, "camera", p.ticket.Camera, "reason", reason)
}

// resourceSecretLen is the length of a resource secret: 16 bytes in
// unpadded base64url.
const resourceSecretLen = 22

// resourceKey is the SHA-256 of a resource secret. Peers are found by it, so
// no comparison (map lookup included) ever runs over the secret itself: how
// long a lookup takes says nothing about how much of a guess was right.
type resourceKey [sha256.Size]byte

func newResourceSecret() (string, resourceKey, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", resourceKey{}, fmt.Errorf("whep resource secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	return secret, sha256.Sum256([]byte(secret)), nil
}

// resourceKeyOf returns the key a resource URL segment names (false when it
// cannot be a secret).
func resourceKeyOf(secret string) (resourceKey, bool) {
	if len(secret) != resourceSecretLen {
		return resourceKey{}, false
	}
	for i := 0; i < len(secret); i++ {
		c := secret[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return resourceKey{}, false
		}
	}
	return sha256.Sum256([]byte(secret)), true
}
