package rtsp

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
)

// viewer is camgate's state of one RTSP session (ServerSession user data).
type viewer struct {
	id       string
	ticket   session.Ticket
	cam      *camState
	vs       *variantStreams
	release  func() // the hub reference held while the session lives
	tcp      bool
	channels []int      // interleaved channel per SETUP, in SETUP order
	udpPorts []int      // client RTP port per SETUP, in SETUP order (UDP)
	udpIP    netip.Addr // the client's address (UDP: where gortsplib sends)
	conn     *mediaConn // the connection PLAY came on (its idle timeout is off while playing)

	mu       sync.Mutex // guards the fields below
	reader   *stream.Reader
	join     *udpJoin // UDP: the GOP replay, until it hands over to the shared stream
	cancel   context.CancelFunc
	playing  bool
	finished bool
}

type handler struct{ s *Server }

// OnResponse puts camgate's challenge on every 401 that carries one:
// gortsplib's would name its own realm and a nonce it keeps to itself; ours
// has the realm the credentials' HA1 was made for and the connection's own
// nonce, which admitDigest checks.
func (h *handler) OnResponse(sc *gortsplib.ServerConn, res *base.Response) {
	if res.StatusCode != base.StatusUnauthorized || res.Header["WWW-Authenticate"] == nil {
		return
	}
	nonce := ""
	if mc, ok := sc.NetConn().(*mediaConn); ok {
		nonce = mc.nonce
	}
	res.Header["WWW-Authenticate"] = auth.GenerateWWWAuthenticate(h.s.AuthMethods, h.s.Realm, nonce)
}

func (h *handler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	h.s.Logger.Debug("rtsp udp write", "error", ctx.Error)
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	t, res, err := h.s.admit(ctx.Conn, ctx.Request, ctx.Path, ctx.Query)
	if err != nil {
		h.s.Logger.Info("rtsp describe refused", "path", ctx.Path, "error", err, "remote", ctx.Conn.NetConn().RemoteAddr().String())
		return res, nil, rtspError(err)
	}
	st, release, err := h.s.Hub.Acquire(h.s.ctx, t.Camera)
	if err != nil {
		return errorResponse(err), nil, err
	}
	// The hub lingers after this release, so SETUP finds the stream warm.
	defer release()
	cs, err := h.s.camState(t.Camera, st)
	if err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil, err
	}
	return &base.Response{StatusCode: base.StatusOK}, cs.variants[t.Variant].udp, nil
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	v, _ := ctx.Session.UserData().(*viewer)
	if v == nil {
		t, res, err := h.s.admit(ctx.Conn, ctx.Request, ctx.Path, ctx.Query)
		if err != nil {
			return res, nil, rtspError(err)
		}
		st, release, err := h.s.Hub.Acquire(h.s.ctx, t.Camera)
		if err != nil {
			return errorResponse(err), nil, err
		}
		cs, err := h.s.camState(t.Camera, st)
		if err != nil {
			release()
			return &base.Response{StatusCode: base.StatusInternalServerError}, nil, err
		}
		v = &viewer{
			id:      session.NewID(),
			ticket:  t,
			cam:     cs,
			vs:      cs.variants[t.Variant],
			release: release,
			tcp:     ctx.Transport.Protocol == gortsplib.ProtocolTCP,
		}
		if ap, err := netip.ParseAddrPort(ctx.Conn.NetConn().RemoteAddr().String()); err == nil {
			v.udpIP = ap.Addr().Unmap()
		}
		ctx.Session.SetUserData(v)
	}
	if v.tcp {
		ch := 2 * len(v.channels) // gortsplib's choice when the client names none
		var th headers.Transport
		if err := th.Unmarshal(ctx.Request.Header["Transport"]); err == nil && th.InterleavedIDs != nil {
			ch = th.InterleavedIDs[0]
		}
		v.channels = append(v.channels, ch)
		return &base.Response{StatusCode: base.StatusOK}, v.vs.tcp, nil
	}
	port := 0
	var th headers.Transport
	if err := th.Unmarshal(ctx.Request.Header["Transport"]); err == nil && th.ClientPorts != nil {
		port = th.ClientPorts[0]
	}
	v.udpPorts = append(v.udpPorts, port)
	return &base.Response{StatusCode: base.StatusOK}, v.vs.udp, nil
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	v, _ := ctx.Session.UserData().(*viewer)
	if v == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, fmt.Errorf("play without setup")
	}
	t, res, err := h.s.admit(ctx.Conn, ctx.Request, ctx.Path, ctx.Query)
	if err != nil {
		return res, rtspError(err)
	}
	if t.Camera != v.ticket.Camera || t.Variant != v.ticket.Variant {
		// e.g. `sound` was revoked between SETUP and PLAY: describe again.
		return &base.Response{StatusCode: base.StatusForbidden}, fmt.Errorf("access changed since setup")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.playing || v.finished {
		return &base.Response{StatusCode: base.StatusOK}, nil
	}
	v.playing = true
	v.ticket = t
	if mc, ok := ctx.Conn.NetConn().(*mediaConn); ok {
		v.conn = mc
		mc.setPlaying(true)
	}
	if v.tcp {
		if err := h.startTCP(ctx, v); err != nil {
			return &base.Response{StatusCode: base.StatusInternalServerError}, err
		}
	} else {
		start := h.startUDP(ctx, v)
		if v.conn != nil {
			// After the PLAY response, when the client listens: the
			// replay starts with the GOP's keyframe.
			v.conn.setAfterWrite(start)
		} else {
			go start() // it takes v.mu, held here
		}
	}
	ss := ctx.Session
	h.s.Sessions.Add(&session.Session{
		ID:         v.id,
		Protocol:   session.ProtocolRTSP,
		Camera:     t.Camera,
		Subject:    t.Subject,
		Link:       t.Link,
		Credential: t.Credential,
		Relay:      t.Relay,
		Variant:    t.Variant,
		Remote:     ctx.Conn.NetConn().RemoteAddr().String(),
		ValidUntil: t.ValidUntil,
		Kick:       func(string) { ss.Close() },
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// startTCP prepares the session's writer; it starts sending right after the
// PLAY response is written (v.mu held).
func (h *handler) startTCP(ctx *gortsplib.ServerHandlerOnPlayCtx, v *viewer) error {
	mc, ok := ctx.Conn.NetConn().(*mediaConn)
	if !ok {
		return fmt.Errorf("unexpected connection type %T", ctx.Conn.NetConn())
	}
	medias := ctx.Session.Medias() // in SETUP order, like v.channels
	w := &tcpWriter{
		conn:     mc,
		reader:   stream.NewReader(h.s.QueueSize),
		channels: make([]int, len(v.vs.tcp.Desc.Medias)),
		ssrcs:    v.vs.ssrcs,
		timeout:  h.s.WriteTimeout,
		last:     make([]srState, len(v.vs.tcp.Desc.Medias)),
		sent:     &h.s.bytesSent,
	}
	for i := range w.channels {
		w.channels[i] = noChannel
	}
	for i, m := range medias {
		for j, dm := range v.vs.tcp.Desc.Medias {
			if dm == m && i < len(v.channels) {
				w.channels[j] = v.channels[i]
			}
		}
	}
	runCtx, cancel := context.WithCancel(h.s.ctx)
	v.reader, v.cancel = w.reader, cancel
	ss := ctx.Session
	mc.setAfterWrite(func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.finished {
			return
		}
		if err := v.vs.variant.AddReader(w.reader); err != nil {
			ss.Close()
			return
		}
		go func() {
			err := w.run(runCtx)
			if runCtx.Err() == nil {
				h.s.Logger.Debug("rtsp writer stopped", "session", v.id, "error", err)
				ss.Close()
			}
		}()
	})
	return nil
}

// startUDP makes the viewer's join of the shared UDP stream (udp_join.go):
// from now on the shared stream's packets to it are held back. The
// returned func starts the shared pump, if it is not running yet, and the
// viewer's GOP replay (v.mu held).
func (h *handler) startUDP(ctx *gortsplib.ServerHandlerOnPlayCtx, v *viewer) func() {
	vs := v.vs
	pump := func() { vs.startUDPPump(h.s.ctx, h.s.QueueSize, h.s.Logger) }
	if h.s.udpRTP == nil || !v.udpIP.IsValid() {
		return pump
	}
	addrs := make([]netip.AddrPort, len(vs.udp.Desc.Medias))
	for i, m := range ctx.Session.Medias() { // in SETUP order, like v.udpPorts
		for j, dm := range vs.udp.Desc.Medias {
			if dm == m && i < len(v.udpPorts) && v.udpPorts[i] > 0 {
				addrs[j] = netip.AddrPortFrom(v.udpIP, uint16(v.udpPorts[i]))
			}
		}
	}
	j := newUDPJoin(&h.s.udpJoins, h.s.udpRTP, addrs, vs.udpSSRC, h.s.QueueSize, vs.variant.GOPPackets())
	runCtx, cancel := context.WithCancel(h.s.ctx)
	v.reader, v.cancel, v.join = j.reader, cancel, j
	return func() {
		pump()
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.finished {
			return
		}
		if err := vs.variant.AddReader(j.reader); err != nil {
			j.stop()
			return
		}
		go func() {
			if err := j.run(runCtx); err != nil && runCtx.Err() == nil {
				h.s.Logger.Debug("rtsp udp replay stopped", "session", v.id, "error", err)
			}
		}()
	}
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	v, _ := ctx.Session.UserData().(*viewer)
	if v == nil {
		return
	}
	v.mu.Lock()
	v.finished = true
	if v.cancel != nil {
		v.cancel()
	}
	if v.reader != nil {
		v.reader.Close()
	}
	if v.join != nil {
		v.join.stop()
	}
	wasPlaying := v.playing
	conn := v.conn
	v.mu.Unlock()
	if conn != nil { // e.g. TEARDOWN of a UDP session: the connection is idle again
		conn.setPlaying(false)
	}
	if wasPlaying {
		reason := "viewer left"
		if ctx.Error != nil {
			reason = ctx.Error.Error()
		}
		h.s.Sessions.Remove(v.id, reason)
	}
	v.release()
}
