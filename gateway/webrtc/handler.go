package webrtc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"mime"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/internal/httpjson"
)

// admitTimeout bounds admission plus opening the camera for one POST.
const admitTimeout = 15 * time.Second

// errNoSession: the session URL names no live session of this node.
var errNoSession = fmt.Errorf("no such WHEP session: %w", httpjson.ErrNotFound)

// errStreamUnavailable stands for every upstream failure: its details may
// name the camera's source, so the viewer is told no more.
var errStreamUnavailable = fmt.Errorf("stream unavailable: %w", httpjson.ErrUnavailable)

// Handle serves the WHEP endpoint: POST /whep/{camera} (id ""), and PATCH
// and DELETE /whep/{camera}/{id}; OPTIONS on both for CORS preflight. The
// HTTP front routes both paths here. id is the resource secret of the
// Location answered to the POST, never the registry's session id: knowing
// the resource URL is what lets a viewer end or trickle to its own session
// (an admin kick is DELETE /api/v1/sessions/{id}).
func (s *Server) Handle(ctx *fasthttp.RequestCtx, camera, id string) {
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Origin", *s.allowOrigin.Load())
	h.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Patch, Accept-Post")
	switch {
	case ctx.IsOptions():
		s.preflight(ctx, id)
	case id == "" && ctx.IsPost():
		s.post(ctx, camera)
	case id != "" && ctx.IsPatch():
		s.patch(ctx, camera, id)
	case id != "" && ctx.IsDelete():
		s.delete(ctx, camera, id)
	default:
		h.Set("Allow", allowed(id))
		writeError(ctx, fmt.Errorf("%w: %s", httpjson.ErrMethodNotAllowed, ctx.Method()))
	}
}

func allowed(id string) string {
	if id == "" {
		return "OPTIONS, POST"
	}
	return "OPTIONS, PATCH, DELETE"
}

func (s *Server) preflight(ctx *fasthttp.RequestCtx, id string) {
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Methods", allowed(id))
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Allow", allowed(id))
	if id == "" {
		h.Set("Accept-Post", "application/sdp")
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// post admits the viewer and answers its offer.
func (s *Server) post(ctx *fasthttp.RequestCtx, camera string) {
	remote := ctx.RemoteAddr().String()
	if len(ctx.PostBody()) > s.MaxOfferSize {
		s.refuse(ctx, camera, remote, fmt.Errorf("%w: offer over %d bytes", ErrTooLarge, s.MaxOfferSize))
		return
	}
	if !validCamera(camera) {
		s.refuse(ctx, camera, remote, session.ErrUnknownCamera)
		return
	}
	token := bearer(ctx.Request.Header.Peek("Authorization"))
	if token == "" {
		s.refuse(ctx, camera, remote, fmt.Errorf("%w: no Bearer token", session.ErrUnauthenticated))
		return
	}
	actx, cancel := context.WithTimeout(session.WithProtocol(session.WithRemote(s.ctx, ctx.RemoteAddr()), session.ProtocolWebRTC), admitTimeout)
	defer cancel()
	t, err := s.Admitter.Admit(actx, token, camera)
	if err != nil {
		s.refuse(ctx, camera, remote, err)
		return
	}
	offer := string(ctx.PostBody()) // a copy: pion keeps it
	info, err := checkOffer(offer)
	if err != nil {
		s.refuse(ctx, camera, remote, err)
		return
	}
	p, secret, answer, err := s.newPeer(actx, t, offer, info, remote)
	if err != nil {
		s.refuse(ctx, camera, remote, err)
		return
	}
	s.Logger.Info("webrtc: viewer admitted", "session", p.id, "camera", camera, "subject", t.Subject,
		"link", t.Link, "variant", t.Variant, "audio", p.vt.audio != nil && info.audio, "token", t.Token, "remote", remote)
	h := &ctx.Response.Header
	h.Set("Location", "/whep/"+camera+"/"+secret)
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	h.SetContentType("application/sdp")
	ctx.SetStatusCode(fasthttp.StatusCreated)
	ctx.SetBodyString(answer)
}

// patch adds the viewer's trickled ICE candidates, after re-checking its
// access from the cached decision.
func (s *Server) patch(ctx *fasthttp.RequestCtx, camera, id string) {
	p := s.lookup(camera, id)
	if p == nil {
		writeError(ctx, errNoSession)
		return
	}
	if mt, _, _ := mime.ParseMediaType(string(ctx.Request.Header.ContentType())); mt != "application/trickle-ice-sdpfrag" {
		writeError(ctx, fmt.Errorf("%w: Content-Type must be application/trickle-ice-sdpfrag", httpjson.ErrUnsupportedMediaType))
		return
	}
	if len(ctx.PostBody()) > s.MaxOfferSize {
		writeError(ctx, ErrTooLarge)
		return
	}
	if err := s.recheck(p); err != nil {
		p.close("access lost: " + err.Error())
		writeError(ctx, err)
		return
	}
	tr, err := parseTrickle(string(ctx.PostBody()))
	if err == nil && tr.ufrag != "" && tr.ufrag != p.ufrag {
		err = fmt.Errorf("%w: ICE restart is not supported", ErrBadCandidate)
	}
	for _, c := range tr.candidates {
		if err != nil {
			break
		}
		if e := p.pc.AddICECandidate(c); e != nil {
			err = fmt.Errorf("%w: %w", ErrBadCandidate, e)
		}
	}
	if err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) delete(ctx *fasthttp.RequestCtx, camera, id string) {
	p := s.lookup(camera, id)
	if p == nil {
		writeError(ctx, errNoSession)
		return
	}
	p.close("viewer left")
	ctx.SetStatusCode(fasthttp.StatusOK)
}

// lookup finds the peer of a resource URL's secret on camera.
func (s *Server) lookup(camera, secret string) *peer {
	key, ok := resourceKeyOf(secret)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.peers[key]; p != nil && p.ticket.Camera == camera {
		return p
	}
	return nil
}

// recheck re-decides the peer's ticket from the cached decision.
func (s *Server) recheck(p *peer) error {
	s.mu.Lock()
	t := p.ticket
	s.mu.Unlock()
	if err := s.Admitter.Recheck(&t, time.Now()); err != nil {
		return err
	}
	s.mu.Lock()
	p.ticket = t
	s.mu.Unlock()
	return nil
}

func (s *Server) refuse(ctx *fasthttp.RequestCtx, camera, remote string, err error) {
	code, _ := httpapi.StatusOf(viewerError(err))
	level := slog.LevelInfo
	if code >= 500 {
		level = slog.LevelWarn
	}
	s.Logger.Log(context.Background(), level, "webrtc: viewer refused", "camera", camera, "status", code, "error", err, "remote", remote)
	writeError(ctx, err)
}

// viewerError keeps what the one mapping knows and turns anything else
// (an upstream or peer failure) into "stream unavailable".
func viewerError(err error) error {
	if code, _ := httpapi.StatusOf(err); code == fasthttp.StatusInternalServerError {
		return errStreamUnavailable
	}
	return err
}

// writeError answers err through the HTTP front's one mapping.
func writeError(ctx *fasthttp.RequestCtx, err error) {
	httpapi.WriteErr(ctx, viewerError(err))
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(h []byte) string {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !bytes.EqualFold(h[:len(prefix)], []byte(prefix)) {
		return ""
	}
	return strings.TrimSpace(string(h[len(prefix):]))
}

// validCamera rejects ids that could not name a camera (path tricks).
func validCamera(camera string) bool {
	return camera != "" && !strings.ContainsAny(camera, "/\\") && !strings.HasPrefix(camera, ".")
}
