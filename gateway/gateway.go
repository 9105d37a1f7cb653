// Package gateway assembles camgate: the permission service, the stream hub,
// the session registry and the viewer-facing servers (RTSP, HTTP with HLS,
// WHEP and archive), from one configuration. cmd/camgate is a thin shell
// around it.
package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/cluster"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/gateway/creds"
	"github.com/camgate/camgate/gateway/events"
	"github.com/camgate/camgate/gateway/hls"
	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/ptz"
	"github.com/camgate/camgate/gateway/recorder"
	"github.com/camgate/camgate/gateway/rtsp"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/snapshot"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/gateway/webrtc"
	"github.com/camgate/camgate/links"
)

// Gateway is one camgate node.
type Gateway struct {
	// Config is the validated configuration. After a Reload it is the one
	// running: the keys Reload applied have their new values, those that
	// need a restart keep the old ones.
	Config config.Config
	// Logger (default: discard).
	Logger *slog.Logger
	// LogLevel, when set, is the level Logger's handler filters on;
	// Initialize sets it from log_level and Reload changes it. Nil: a
	// changed log_level needs a restart.
	LogLevel *slog.LevelVar
	// Version is reported by the API and logs.
	Version string

	authz    *authz.Service
	hub      *stream.Hub
	registry *session.Registry
	access   *access.Service
	metrics  *metrics
	rtsp     *rtsp.Server
	rtsps    *rtsp.Server
	certs    *certReloader
	http     *httpapi.Server
	ptz      *ptz.Controller
	hls      *hls.Server
	whep     *webrtc.Server
	archive  *archive.Store
	recorder *recorder.Manager
	links    *links.Service
	creds    *creds.Service

	snapshots *snapshot.Service
	events    *events.Service
	ffmpeg    *snapshot.FFmpeg

	reloadMu      sync.Mutex // one Reload at a time
	recMu         sync.Mutex // one syncRecorders at a time (invalidations, cluster ownership)
	invalidations *invalidator
	unsubscribe   func()
	redis         *redisNode                   // nil without redis.url (redis.go)
	cluster       atomic.Pointer[cluster.Node] // nil without cluster.enabled (cluster_glue.go)
	moves         moveWatches                  // cameras moving to this node (cluster_handoff.go)
	closers       []func()
}

// Initialize builds and starts every component; on error, what was started
// is stopped again.
func (g *Gateway) Initialize() error {
	if g.Logger == nil {
		g.Logger = slog.New(slog.DiscardHandler)
	}
	if err := g.Config.Validate(); err != nil {
		return err
	}
	if g.LogLevel != nil {
		g.LogLevel.Set(logLevel(g.Config.LogLevel))
	}
	if err := g.start(); err != nil {
		g.Close()
		return err
	}
	return nil
}

func (g *Gateway) start() error {
	cfg := g.Config
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	g.metrics = newMetrics()

	if err := g.startRedis(); err != nil {
		return err
	}
	g.authz = &authz.Service{DataDir: cfg.DataDir, Store: g.authzStore(), AdminKeys: cfg.Auth.AdminKeys,
		OutageGrace: time.Duration(cfg.Redis.OutageGrace), Logger: g.Logger.With("component", "authz")}
	if err := g.authz.Initialize(); err != nil {
		return fmt.Errorf("authz: %w", err)
	}
	g.closers = append(g.closers, g.authz.Close)
	if err := g.bootstrapCameras(); err != nil {
		return err
	}

	if err := g.startSessions(cfg); err != nil {
		return err
	}
	if err := g.startServers(cfg); err != nil {
		return err
	}
	return g.startCluster()
}

// startSessions builds what admits and tracks viewers: token settings, the
// stream hub, the archive, the session registry, share links and the
// invalidation path from authz to open sessions.
func (g *Gateway) startSessions(cfg config.Config) error {
	settings, err := g.newAccessSettings(cfg)
	if err != nil {
		return err
	}
	// The enforcement point exists first (the archive and the registry
	// hold it); it is initialized once links and the registry exist, before
	// any request is served.
	g.access = &access.Service{Authz: g.authz, Counters: g.metrics}
	if cfg.Cluster.Enabled {
		g.access.RelaySecret = []byte(cfg.Cluster.Secret)
		g.access.Peers, g.access.RelayRecheck = clusterPeers{g}, time.Duration(cfg.Cluster.LeaseTTL)/3
	}
	g.hub = &stream.Hub{
		Sources:           g.sourceFor,
		Linger:            time.Duration(cfg.Sessions.UpstreamLinger),
		GOPForViewersOnly: cfg.Sessions.GOPCache == "viewers",
		OnUpstream:        g.upstreamChanged,
		Logger:            g.Logger.With("component", "upstream"),
	}
	if err := g.hub.Initialize(); err != nil {
		return err
	}
	g.closers = append(g.closers, g.hub.Close)
	if err := g.startArchive(); err != nil {
		return err
	}

	g.registry = &session.Registry{
		// g.access is set below, before any session can exist.
		Recheck: func(s *session.Session) session.Verdict { return g.access.RecheckSession(s) },
		OnStart: func(s *session.Session) error { return g.access.SessionStarted(s) },
		OnEnd:   g.sessionEnded,
		Logger:  g.Logger.With("component", "sessions"),
	}
	if err := g.registry.Initialize(); err != nil {
		return err
	}
	// Closed after the protocol servers (closers run in reverse), which end
	// their sessions first; then no valid_until timer is left running.
	g.closers = append(g.closers, g.registry.Close)
	if err := g.startDirectory(); err != nil {
		return err
	}
	g.invalidations = newInvalidator(g.invalidate)
	g.closers = append(g.closers, g.invalidations.close)
	if err := g.startLinks(); err != nil {
		return err
	}
	if err := g.startCreds(); err != nil {
		return err
	}
	g.access.Links, g.access.Sessions, g.access.Creds = g.links, g.registry, g.creds
	if err := g.access.Initialize(settings); err != nil {
		settings.Verifier.Close()
		return err
	}
	g.closers = append(g.closers, g.access.Close)
	g.unsubscribe = g.authz.Subscribe(func(inv authz.Invalidation) {
		c := session.Change{All: inv.All, Subjects: inv.Subjects, Devices: inv.Devices}
		for _, p := range inv.Pairs {
			c.Pairs = append(c.Pairs, session.Pair{Subject: p.Subject, Device: p.Device})
		}
		g.invalidations.push(c)
	})
	return nil
}

// startServers opens the viewer-facing servers and the HTTP front.
func (g *Gateway) startServers(cfg config.Config) (err error) {
	if cfg.TLS.CertFile != "" {
		if g.certs, err = newCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			return err
		}
	}
	g.rtsp = &rtsp.Server{
		Address:        cfg.RTSP.Listen,
		UDPRTPAddress:  cfg.RTSP.UDPRTPListen,
		UDPRTCPAddress: cfg.RTSP.UDPRTCPListen,
		IdleTimeout:    time.Duration(cfg.RTSP.IdleTimeout),
		MaxConnsPerIP:  cfg.RTSP.MaxConnsPerIP,
		Hub:            g.hub,
		Admitter:       g.access,
		Sessions:       g.registry,
		Credentials:    g.access,
		AuthMethods:    rtspAuthMethods(cfg.RTSP.AuthMethods),
		Logger:         g.Logger.With("component", "rtsp"),
	}
	if err := g.rtsp.Initialize(); err != nil {
		return err
	}
	g.closers = append(g.closers, g.rtsp.Close)
	if cfg.RTSP.RTSPSListen != "" {
		g.rtsps = &rtsp.Server{
			Address:       cfg.RTSP.RTSPSListen,
			TLSConfig:     g.certs.Config(),
			IdleTimeout:   time.Duration(cfg.RTSP.IdleTimeout),
			MaxConnsPerIP: cfg.RTSP.MaxConnsPerIP,
			Hub:           g.hub,
			Admitter:      g.access,
			Sessions:      g.registry,
			Credentials:   g.access,
			AuthMethods:   rtspAuthMethods(cfg.RTSP.AuthMethods),
			Logger:        g.Logger.With("component", "rtsps"),
		}
		if err := g.rtsps.Initialize(); err != nil {
			return err
		}
		g.closers = append(g.closers, g.rtsps.Close)
	}

	g.hls = &hls.Server{
		Hub: g.hub, Admitter: g.access, Sessions: g.registry,
		AllowOrigin:    cfg.WebRTC.AllowOrigin, // one CORS setting for the browser-facing endpoints
		TranscodeAudio: cfg.Sessions.AudioTranscode == "auto",
		Logger:         g.Logger.With("component", "hls"),
	}
	if err := g.hls.Initialize(); err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	g.closers = append(g.closers, g.hls.Close)
	w := cfg.WebRTC
	g.whep = &webrtc.Server{
		Hub: g.hub, Admitter: g.access, Sessions: g.registry,
		UDPMuxAddress: w.UDPMuxListen, PortMin: uint16(w.PortMin), PortMax: uint16(w.PortMax),
		NAT1To1IPs: w.NAT1To1IPs, IncludeLoopback: w.IncludeLoopback, AllowOrigin: w.AllowOrigin,
		TranscodeAudio: cfg.Sessions.AudioTranscode == "auto",
		Logger:         g.Logger.With("component", "webrtc"),
	}
	if err := g.whep.Initialize(); err != nil {
		return fmt.Errorf("webrtc: %w", err)
	}
	g.closers = append(g.closers, g.whep.Close)

	g.ptz = &ptz.Controller{
		Leases: g.leaseStore(), Timeout: time.Duration(cfg.PTZ.Timeout), LeaseTTL: time.Duration(cfg.PTZ.LeaseTTL),
		Priorities: ptzPriorities(cfg.PTZ.Priority), Logger: g.Logger.With("component", "ptz"),
	}
	if err := g.ptz.Initialize(); err != nil {
		return err
	}
	g.closers = append(g.closers, g.ptz.Close)
	if err := g.startSnapshots(); err != nil {
		return err
	}
	closeEvents, err := g.startEvents()
	if err != nil {
		return err
	}
	if err := g.startHTTP(cfg); err != nil {
		closeEvents()
		return err
	}
	// Open event streams end before the HTTP front closes (closers run
	// newest first), which would otherwise wait for them.
	g.closers = append(g.closers, closeEvents)
	return nil
}

// startHTTP opens the HTTP front: the API and the viewer endpoints.
func (g *Gateway) startHTTP(cfg config.Config) error {
	g.http = &httpapi.Server{
		Address:      cfg.HTTP.Listen,
		TLSConfig:    g.tlsConfig(),
		MaxBodyBytes: int(cfg.HTTP.MaxBodyBytes),
		Authz:        notifyingAuthz{g},
		Access:       g.access,
		Sessions:     g.sessionsAPI(),
		Metrics: func(ctx *fasthttp.RequestCtx) {
			ns := nodeStats{rtspBytes: g.rtsp.BytesSent()}
			if g.rtsps != nil {
				ns.rtspBytes += g.rtsps.BytesSent()
			}
			ns.cacheHits, ns.cacheMisses = g.authz.CacheStats()
			streams := g.hub.Stats()
			if n := g.cluster.Load(); n != nil {
				ns.owned = n.Owned()
				for _, st := range streams {
					if _, owns := n.Owns(st.Camera); !owns && st.Users > 0 {
						ns.relayedIn = append(ns.relayedIn, st.Camera)
					}
				}
			}
			ns.webrtcGSO, ns.webrtcRefused = g.whep.SendStats()
			if g.recorder != nil {
				ns.recording = g.recorder.States()
			}
			g.metrics.write(ctx, g.registry.List(), streams, ns)
		},
		Ready:   g.ready,
		Logger:  g.Logger.With("component", "http"),
		Archive: g.handleArchive,
		HLS:     g.handleHLS,
		WHEP: func(ctx *fasthttp.RequestCtx, p ...string) error {
			id := ""
			if len(p) == 2 {
				id = p[1]
			}
			g.whep.Handle(ctx, p[0], id)
			return nil
		},
		Share:    g.handleSharePage,
		Snapshot: g.handleSnapshot,
		JWKS:     g.links.HandleJWKS,
		API: map[string]httpapi.APIHandler{
			"cameras": g.handleCameras,
			"objects": g.handleObjectUpload,
			"links": func(ctx *fasthttp.RequestCtx, p access.Principal, parts []string) error {
				return g.links.HandleAPI(ctx, p.Caller(), parts)
			},
			"link-keys":          g.handleLinkKeys,
			"stream-credentials": g.handleStreamCredentials,
			"events":             g.events.HandleAPI,
		},
	}
	if err := g.http.Initialize(); err != nil {
		return err
	}
	g.closers = append(g.closers, g.http.Close)
	if len(cfg.Auth.AdminKeys) == 0 {
		g.Logger.Warn("no auth.admin_keys configured: the API accepts only admins created earlier and viewer tokens (set CAMGATE_AUTH_ADMIN_KEYS)")
	}
	if cfg.Auth.ViewerJWT.HS256Secret == "" && len(cfg.Auth.ViewerJWT.PublicKeys) == 0 && cfg.Auth.ViewerJWT.JWKSURL == "" {
		g.Logger.Warn("no viewer token keys configured (auth.viewer_jwt): only share links can watch")
	}
	g.Logger.Info("camgate started", "version", g.Version, "rtsp", g.rtsp.Addr().String(),
		"http", g.http.Addr().String(), "data_dir", cfg.DataDir)
	return nil
}

// handleHLS serves /hls/{camera}/{file}, timing segment and part requests.
func (g *Gateway) handleHLS(ctx *fasthttp.RequestCtx, p ...string) error {
	if !strings.HasSuffix(p[1], ".mp4") {
		g.hls.Handle(ctx, p[0], p[1])
		return nil
	}
	start := time.Now()
	g.hls.Handle(ctx, p[0], p[1])
	g.metrics.segments.observe(time.Since(start))
	return nil
}

// invalidate runs on the invalidator's goroutine for every change: it
// re-checks the sessions it touches (including those of share links whose
// creator it names) and keeps recordings in step with the devices.
func (g *Gateway) invalidate(c session.Change) {
	for _, sub := range c.Subjects {
		c.Links = append(c.Links, g.links.LinksByCreator(sub)...)
		g.revokeCredsOfDeleted(sub)
	}
	for _, p := range c.Pairs {
		c.Links = append(c.Links, g.links.LinksByCreator(p.Subject)...)
	}
	if g.registry != nil {
		g.registry.Invalidate(c)
	}
	if (c.All || len(c.Devices) > 0) && g.recorder != nil {
		g.syncRecorders()
		g.retryRecorders(c)
	}
}

// revokeCredsOfDeleted revokes the stream credentials of a subject that no
// longer exists, so that one created later under its id does not inherit
// them (every node tries; the first one wins).
func (g *Gateway) revokeCredsOfDeleted(subject string) {
	if g.creds == nil {
		return
	}
	if _, ok := g.authz.Subject(subject); ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := g.creds.RevokeSubject(ctx, subject); err != nil {
		g.Logger.Warn("revoking the stream credentials of a deleted subject", "subject", subject, "error", err)
	} else if n > 0 {
		g.Logger.Info("revoked the stream credentials of a deleted subject", "subject", subject, "credentials", n)
	}
}

// Close stops everything, newest first.
func (g *Gateway) Close() {
	if g.unsubscribe != nil {
		g.unsubscribe()
		g.unsubscribe = nil
	}
	for i := len(g.closers) - 1; i >= 0; i-- {
		g.closers[i]()
	}
	g.closers = nil
}

func (g *Gateway) tlsConfig() *tls.Config {
	if g.certs == nil {
		return nil
	}
	return g.certs.Config()
}

// RTSPSAddr returns the RTSPS listener's address (nil when off).
func (g *Gateway) RTSPSAddr() net.Addr {
	if g.rtsps == nil {
		return nil
	}
	return g.rtsps.Addr()
}

// RTSPAddr and HTTPAddr return the bound addresses.
func (g *Gateway) RTSPAddr() net.Addr { return g.rtsp.Addr() }

// HTTPAddr returns the HTTP listener's address.
func (g *Gateway) HTTPAddr() net.Addr { return g.http.Addr() }

// Authz exposes the permission service (for bootstrap commands and tests).
func (g *Gateway) Authz() *authz.Service { return g.authz }

// Links exposes the share-link service (for bootstrap commands and tests).
func (g *Gateway) Links() *links.Service { return g.links }

// StreamCredentials exposes the stream-credential service (for bootstrap
// commands and tests).
func (g *Gateway) StreamCredentials() *creds.Service { return g.creds }

// Sessions exposes the session registry.
func (g *Gateway) Sessions() *session.Registry { return g.registry }

func (g *Gateway) ready() error {
	if _, err := os.Stat(g.Config.DataDir); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	return g.authz.Healthy()
}

// sourceFor resolves a camera to its upstream, at every (re)connect.

// bootstrapCameras writes the configured cameras (and their sites) into the
// store when they are missing or differ; the API manages everything else.
func (g *Gateway) bootstrapCameras() error {
	root := authz.Caller{Root: true}
	ctx := context.Background()
	var devs []authz.Device
	for _, c := range g.Config.Cameras {
		site := c.Site
		if site == "" {
			site = "default"
		}
		if _, ok := g.authz.Site(site); !ok {
			if _, _, err := g.authz.PutSite(ctx, root, authz.Site{ID: site, Name: site}); err != nil {
				return fmt.Errorf("cameras: site %s: %w", site, err)
			}
		}
		want := authz.Device{ID: c.ID, Site: site, Kind: authz.DeviceCamera, Name: c.Name, Source: c.Source, Record: c.Record,
			Transport: c.Transport, UDPReadBuffer: c.UDPReadBuffer}
		if d, ok := g.authz.Device(c.ID); ok && d.Site == want.Site && d.Source == want.Source && d.Record == want.Record &&
			d.Name == want.Name && d.Transport == want.Transport && d.UDPReadBuffer == want.UDPReadBuffer {
			continue
		}
		devs = append(devs, want)
	}
	if len(devs) == 0 {
		return nil
	}
	// One commit for all of them: thousands of configured cameras start in
	// well under a second instead of one fsync each.
	if _, err := g.authz.PutDevices(ctx, root, devs); err != nil {
		return fmt.Errorf("cameras: %w", err)
	}
	return nil
}

// invalidator hands permission changes to the session registry in order, on
// its own goroutine, so a write never waits for session re-checks.
type invalidator struct {
	handle func(session.Change)
	mu     sync.Mutex
	q      []session.Change
	wake   chan struct{}
	done   chan struct{}
	stop   chan struct{}
}

func newInvalidator(handle func(session.Change)) *invalidator {
	iv := &invalidator{handle: handle, wake: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{})}
	go iv.run()
	return iv
}

func (iv *invalidator) push(c session.Change) {
	iv.mu.Lock()
	iv.q = append(iv.q, c)
	iv.mu.Unlock()
	select {
	case iv.wake <- struct{}{}:
	default:
	}
}

func (iv *invalidator) run() {
	defer close(iv.done)
	for {
		select {
		case <-iv.stop:
			return
		case <-iv.wake:
		}
		iv.mu.Lock()
		q := iv.q
		iv.q = nil
		iv.mu.Unlock()
		for _, c := range q {
			iv.handle(c)
		}
	}
}

func (iv *invalidator) close() {
	close(iv.stop)
	<-iv.done
}
