package hls

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/session"
)

// Errors of per-request authorization (both wrap session.ErrForbidden: 403).
var (
	// ErrSessionEnded: the session lost access (revoke, kick, expiry of its
	// decision) and answers 403 from then on.
	ErrSessionEnded = fmt.Errorf("%w: hls session ended", session.ErrForbidden)
	// ErrWrongCamera: the session was admitted for another camera.
	ErrWrongCamera = fmt.Errorf("%w: hls session is for another camera", session.ErrForbidden)
)

// hlsSession is one viewer's token exchange: its id is a bearer secret
// carried in playlist URLs and a cookie. It is bound to the admitted ticket,
// not to the client address.
type hlsSession struct {
	id     string // secret; never logged, never in the registry
	regID  string // the registry's id, shown to admins
	camera string
	mux    *camMuxer

	lastSeen atomic.Int64           // unix nanoseconds of the last authorized request
	inFlight atomic.Int32           // requests being served: a session waiting on the muxer is not idle
	blocking atomic.Int32           // blocking muxer calls still running, abandoned ones included
	ended    atomic.Pointer[string] // why the session lost access; nil while live
	released atomic.Bool            // the muxer reference was given back

	mu     sync.Mutex // guards ticket (Recheck may move ValidUntil)
	ticket session.Ticket
}

// newSessionID returns 128 random bits in hex.
func newSessionID() (string, error) {
	var b [sessionIDLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// admit exchanges a token for a new HLS session on camera.
func (s *Server) admit(ctx *fasthttp.RequestCtx, camera, token string) (*hlsSession, error) {
	// The server's context, with the client's address for the failure limiter.
	t, err := s.Admitter.Admit(session.WithProtocol(session.WithRemote(s.ctx, ctx.RemoteAddr()), session.ProtocolHLS), token, camera)
	if err != nil {
		s.Logger.Debug("hls admission refused", "camera", camera, "error", err)
		return nil, err
	}
	id, err := newSessionID()
	if err != nil {
		return nil, err
	}
	hs := &hlsSession{id: id, regID: session.NewID(), camera: camera, ticket: t}
	hs.lastSeen.Store(time.Now().UnixNano())
	hs.mux, err = s.acquireMuxer(camera, t.Variant)
	if err != nil {
		return nil, err
	}
	s.sessMu.Lock()
	s.sessions[id] = hs
	s.sessMu.Unlock()
	s.Sessions.Add(&session.Session{
		ID:         hs.regID,
		Protocol:   session.ProtocolHLS,
		Camera:     camera,
		Subject:    t.Subject,
		Link:       t.Link,
		Variant:    t.Variant,
		Remote:     ctx.RemoteIP().String(),
		ValidUntil: t.ValidUntil,
		Kick:       func(reason string) { s.end(hs, reason, false) },
	})
	s.Logger.Debug("hls session admitted", "camera", camera, "session", hs.regID, "token", t.Token, "variant", t.Variant)
	return hs, nil
}

// authorize finds the session a request names and re-decides it from the
// cached decision.
func (s *Server) authorize(camera string, id []byte, now time.Time) (*hlsSession, error) {
	s.sessMu.RLock()
	hs := s.sessions[string(id)]
	s.sessMu.RUnlock()
	if hs == nil {
		return nil, ErrUnknownSession
	}
	if hs.camera != camera {
		return nil, ErrWrongCamera
	}
	if hs.ended.Load() != nil {
		return nil, ErrSessionEnded
	}
	hs.lastSeen.Store(now.UnixNano())
	hs.mu.Lock()
	err := s.Admitter.Recheck(&hs.ticket, now)
	hs.mu.Unlock()
	if err != nil {
		// Whatever the cause (revoke, valid_until, an expired token), a
		// session that lost access answers 403, now and on every later request.
		s.end(hs, err.Error(), true)
		// Only ErrSessionEnded is wrapped: the cause (an expired token's
		// ErrUnauthenticated) must not turn the 403 into a 401.
		return nil, fmt.Errorf("%w: %s", ErrSessionEnded, err)
	}
	return hs, nil
}

// end marks a session as having lost access and gives back its muxer. The
// session stays in the table (answering 403) until it idles out.
// unregister is false when the registry itself ended it (Kick).
func (s *Server) end(hs *hlsSession, reason string, unregister bool) {
	if !hs.ended.CompareAndSwap(nil, &reason) {
		return
	}
	if unregister {
		s.Sessions.Remove(hs.regID, reason)
	}
	s.releaseSession(hs)
}

func (s *Server) releaseSession(hs *hlsSession) {
	if hs.released.CompareAndSwap(false, true) {
		s.releaseMuxer(hs.mux)
	}
}

// sweep removes sessions idle for longer than IdleTimeout.
func (s *Server) sweep(now time.Time) {
	limit := now.Add(-s.IdleTimeout).UnixNano()
	var idle []*hlsSession
	s.sessMu.Lock()
	for id, hs := range s.sessions {
		if hs.lastSeen.Load() < limit && hs.inFlight.Load() == 0 {
			delete(s.sessions, id)
			idle = append(idle, hs)
		}
	}
	s.sessMu.Unlock()
	for _, hs := range idle {
		s.end(hs, "idle", true)
	}
}

// sweepLoop runs sweep until the server closes.
func (s *Server) sweepLoop() {
	defer s.wg.Done()
	every := min(max(s.IdleTimeout/4, 10*time.Millisecond), 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.sweep(now)
		}
	}
}

// acquireMuxer returns the camera variant's muxer, starting it for the
// first session.
func (s *Server) acquireMuxer(camera, variant string) (*camMuxer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil, errMuxerStopped
	}
	key := camera + "\x00" + variant
	cm := s.muxers[key]
	if cm == nil {
		cm = newCamMuxer(s, camera, variant)
		s.muxers[key] = cm
		cm.start(s.ctx)
	}
	cm.refs++
	return cm, nil
}

// releaseMuxer drops a session's reference; the last one stops the muxer.
func (s *Server) releaseMuxer(cm *camMuxer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cm.refs--
	if cm.refs > 0 {
		return
	}
	key := cm.camera + "\x00" + cm.variant
	if s.muxers[key] == cm {
		delete(s.muxers, key)
	}
	cm.stop()
}
