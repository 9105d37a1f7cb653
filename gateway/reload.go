package gateway

import (
	"fmt"
	"time"

	"github.com/camgate/camgate/authz/token"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/gateway/session"
)

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

// Reload applies a new configuration without a restart (SIGHUP): viewer
// token keys and limits are swapped, the TLS certificate is re-read, and the
// bootstrap cameras are written again — a camera whose source changed is
// reset (its viewers reconnect to the new source); unchanged cameras keep
// playing. Keys that need a restart (listen addresses, data_dir, redis,
// admin keys, tls file names) are reported in the returned list and left as
// they were. On error nothing is changed.
func (g *Gateway) Reload(cfg config.Config) (needRestart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	old := g.Config
	for key, changed := range map[string]bool{
		"data_dir":                 cfg.DataDir != old.DataDir,
		"rtsp":                     cfg.RTSP != old.RTSP,
		"http.listen":              cfg.HTTP.Listen != old.HTTP.Listen,
		"redis.url":                cfg.Redis.URL != old.Redis.URL,
		"tls":                      cfg.TLS != old.TLS,
		"auth.admin_keys":          fmt.Sprint(cfg.Auth.AdminKeys) != fmt.Sprint(old.Auth.AdminKeys),
		"archive":                  cfg.Archive != old.Archive,
		"public_url":               cfg.PublicURL != old.PublicURL,
		"sessions.upstream_linger": cfg.Sessions != old.Sessions,
	} {
		if changed {
			needRestart = append(needRestart, key)
		}
	}
	if g.certs != nil {
		if err := g.certs.Reload(); err != nil {
			return needRestart, err
		}
	}
	settings, err := g.newAccessSettings(cfg)
	if err != nil {
		return needRestart, err
	}
	sources := map[string]string{}
	for _, d := range g.authz.Devices() {
		sources[d.ID] = d.Source
	}
	prevCams := g.Config.Cameras
	g.Config.Cameras = cfg.Cameras
	if err := g.bootstrapCameras(); err != nil {
		g.Config.Cameras = prevCams
		settings.Verifier.Close()
		return needRestart, err
	}
	g.Config.Limits, g.Config.Auth.ViewerJWT = cfg.Limits, cfg.Auth.ViewerJWT
	if err := g.access.Apply(settings); err != nil {
		return needRestart, err
	}
	for _, c := range cfg.Cameras {
		if src, ok := sources[c.ID]; ok && src != c.Source {
			g.hub.Reset(c.ID)
		}
	}
	// Sessions are re-checked: a token key change does not end them (they
	// are bound to permissions), but limits and camera changes may matter.
	g.invalidations.push(session.Change{All: true})
	g.Logger.Info("configuration reloaded", "need_restart", needRestart)
	return needRestart, nil
}
