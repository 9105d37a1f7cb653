package gateway

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/token"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/gateway/session"
)

// A reload is a diff, key by key (config.Diff), as mediamtx's core compares
// its old and new configuration per component. Every key is classified
// here: liveKeys are applied while running, restartKeys keep their old value
// until the next start and are named in one WARN. A key in neither list is
// treated as needing a restart, and TestReloadClassifiesEveryKey fails on it.

// liveKey is a key Reload applies while running.
type liveKey struct {
	// can tells whether this new value can be applied live (nil: always);
	// when it cannot, the key is reported as needing a restart.
	can func(cfg config.Config) bool
	// apply sets the new value in the running component; it cannot fail.
	// nil: applied by one of Reload's steps that may fail (the access
	// settings, the cameras), which run first.
	apply func(cfg config.Config)
}

// liveKeys are the keys Reload applies, by config.Keys name.
func (g *Gateway) liveKeys() map[string]liveKey {
	byAccess := liveKey{} // prepareAccess
	return map[string]liveKey{
		"log_level": {
			can:   func(config.Config) bool { return g.LogLevel != nil },
			apply: func(cfg config.Config) { g.LogLevel.Set(logLevel(cfg.LogLevel)) },
		},
		"webrtc.allow_origin": {apply: func(cfg config.Config) {
			g.hls.SetAllowOrigin(cfg.WebRTC.AllowOrigin) // one CORS setting for the browser-facing endpoints
			g.whep.SetAllowOrigin(cfg.WebRTC.AllowOrigin)
		}},
		"ptz.timeout": {apply: func(cfg config.Config) { g.ptz.SetTimeout(time.Duration(cfg.PTZ.Timeout)) }},
		"http.max_body_bytes": {
			// The server reads no body above MaxUploadBytes, fixed at start.
			can:   func(cfg config.Config) bool { return cfg.HTTP.MaxBodyBytes <= int64(g.http.MaxUploadBytes) },
			apply: func(cfg config.Config) { g.http.SetMaxBodyBytes(int(cfg.HTTP.MaxBodyBytes)) },
		},
		// Sessions learn the new limit at the re-check every reload ends with.
		"redis.outage_grace": {apply: func(cfg config.Config) { g.authz.SetOutageGrace(time.Duration(cfg.Redis.OutageGrace)) }},

		"auth.viewer_jwt.hs256_secret":    byAccess,
		"auth.viewer_jwt.public_keys":     byAccess,
		"auth.viewer_jwt.jwks_url":        byAccess,
		"auth.viewer_jwt.issuer":          byAccess,
		"auth.viewer_jwt.audience":        byAccess,
		"auth.viewer_jwt.leeway":          byAccess,
		"limits.max_sessions_per_subject": byAccess,
		"limits.max_sessions_per_camera":  byAccess,
		"limits.auth_failures_per_minute": byAccess,

		"cameras": {}, // reloadCameras
	}
}

// restartKeys need a restart: listeners and sockets, where data lives, the
// store and what is built on it once (admin keys, the archive, the stream
// hub, PTZ leases), and how the log is written.
func restartKeys() []string {
	return []string{
		"data_dir", "public_url", "log_format",
		"rtsp.listen", "rtsp.udp_rtp_listen", "rtsp.udp_rtcp_listen", "rtsp.rtsps_listen",
		"rtsp.idle_timeout", "rtsp.max_conns_per_ip", "rtsp.auth_methods", "rtsp.upstream_udp_read_buffer",
		"http.listen",
		"tls.cert_file", "tls.key_file",
		"webrtc.udp_mux_listen", "webrtc.port_min", "webrtc.port_max", "webrtc.nat1to1_ips", "webrtc.include_loopback",
		"redis.url",
		"auth.admin_keys",
		"archive.retention", "archive.max_download", "archive.segment_duration", "archive.max_bytes",
		"sessions.upstream_linger", "sessions.gop_cache", "sessions.audio_transcode",
		"ptz.lease_ttl", "ptz.priority",
		"cluster.enabled", "cluster.node_id", "cluster.advertise", "cluster.advertise_http", "cluster.secret", "cluster.lease_ttl",
	}
}

// Reload applies a new configuration without a restart (SIGHUP), key by
// key: it compares cfg with the running configuration, applies every
// changed key that can change live (liveKeys) and returns, and logs in one
// WARN, the changed keys that need a restart; those keep their old value.
// Whatever changed, the TLS certificate and the viewer key files are
// re-read, the bootstrap cameras are written again (a camera whose source
// changed is reset: its viewers reconnect to the new source) and every
// session is re-checked. On error nothing of the configuration is changed.
func (g *Gateway) Reload(cfg config.Config) (needRestart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	live := g.liveKeys()
	var apply []string
	for _, key := range config.Diff(g.Config, cfg) {
		if k, ok := live[key]; ok && (k.can == nil || k.can(cfg)) {
			apply = append(apply, key)
		} else {
			needRestart = append(needRestart, key)
		}
	}

	// The steps that may fail, before anything changes.
	commitAccess, abortAccess, err := g.prepareAccess(cfg)
	if err != nil {
		return needRestart, err
	}
	if g.certs != nil {
		if err := g.certs.Reload(); err != nil {
			abortAccess()
			return needRestart, err
		}
	}
	if err := g.reloadCameras(cfg); err != nil {
		abortAccess()
		return needRestart, err
	}

	commitAccess()
	for _, key := range apply {
		if f := live[key].apply; f != nil {
			f(cfg)
		}
	}
	config.CopyKeys(&g.Config, cfg, apply)
	// Sessions are re-checked: a token key change does not end them (they
	// are bound to permissions), but limits, the outage grace and camera
	// changes may matter.
	g.invalidations.push(session.Change{All: true})
	if len(needRestart) > 0 {
		g.Logger.Warn("configuration reloaded; changed but needs a restart: "+strings.Join(needRestart, ", "), "keys", needRestart)
	}
	g.Logger.Info("configuration reloaded", "applied", apply)
	return needRestart, nil
}

// reloadCameras writes cfg's bootstrap cameras into the store and resets the
// upstream of each whose source changed (reconnects it when only its
// transport or UDP buffer did).
func (g *Gateway) reloadCameras(cfg config.Config) error {
	before := map[string]authz.Device{}
	for _, d := range g.authz.Devices() {
		before[d.ID] = d
	}
	prev := g.Config.Cameras
	g.Config.Cameras = cfg.Cameras
	if err := g.bootstrapCameras(); err != nil {
		g.Config.Cameras = prev
		return err
	}
	for _, c := range cfg.Cameras {
		d, ok := before[c.ID]
		switch {
		case !ok:
		case d.Source != c.Source:
			g.hub.Reset(c.ID)
		case d.Transport != c.Transport || d.UDPReadBuffer != c.UDPReadBuffer:
			g.hub.Reconnect(c.ID) // the same camera: its viewers stay
		}
	}
	return nil
}

// prepareAccess builds the admission settings of cfg — the viewer token
// verifier (auth.viewer_jwt.*, key files re-read), a new token cache and
// failure limiter, the session limits (limits.*) — and changes nothing until
// commit swaps them in; abort releases them instead. It is the one place a
// reload touches admission.
func (g *Gateway) prepareAccess(cfg config.Config) (commit, abort func(), err error) {
	settings, err := g.newAccessSettings(cfg)
	if err != nil {
		return nil, nil, err
	}
	commit = func() {
		// Apply fails only without a verifier, which settings has; it
		// closes the verifier it replaces.
		_ = g.access.Apply(settings)
	}
	return commit, settings.Verifier.Close, nil
}

// newAccessSettings builds the reloadable admission settings: the viewer
// token verifier and the limits.
func (g *Gateway) newAccessSettings(cfg config.Config) (access.Settings, error) {
	jwt := cfg.Auth.ViewerJWT
	pems, err := jwt.PublicKeysPEM()
	if err != nil {
		return access.Settings{}, err
	}
	v := &token.Verifier{
		HS256Secret:   []byte(jwt.HS256Secret),
		PublicKeysPEM: pems,
		JWKSURL:       jwt.JWKSURL,
		Issuer:        jwt.Issuer,
		Audience:      jwt.Audience,
		Leeway:        time.Duration(jwt.Leeway),
		Logger:        g.Logger.With("component", "token"),
	}
	if err := v.Initialize(); err != nil {
		return access.Settings{}, fmt.Errorf("auth.viewer_jwt: %w", err)
	}
	return access.Settings{
		Verifier:              v,
		AuthFailuresPerMinute: cfg.Limits.AuthFailuresPerMinute,
		MaxSessionsPerSubject: cfg.Limits.MaxSessionsPerSubject,
		MaxSessionsPerCamera:  cfg.Limits.MaxSessionsPerCamera,
	}, nil
}

// logLevel parses a validated log_level.
func logLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}
