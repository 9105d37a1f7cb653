package gateway

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/links"
)

// startLinks opens the share-link service: links are decided against their
// creator's current rights, and any change to a link re-checks its sessions.
func (g *Gateway) startLinks() error {
	isAdmin := func(creator string) bool { return creator == "root" || strings.HasPrefix(creator, "admin:") }
	g.links = &links.Service{
		DataDir:   g.Config.DataDir,
		Store:     g.linksStore(),
		PublicURL: g.Config.PublicURL,
		Logger:    g.Logger.With("component", "links"),
		CreatorAllowed: func(creator, device string, now time.Time) bool {
			return isAdmin(creator) || g.authz.Check(creator, device, authz.ActionShare, now).Allowed
		},
		CreatorHas: func(creator, device, action string, now time.Time) bool {
			if isAdmin(creator) {
				return true
			}
			a, err := authz.ParseAction(action)
			return err == nil && g.authz.Check(creator, device, a, now).Allowed
		},
		DeviceExists: func(d string) bool { _, ok := g.authz.Device(d); return ok },
		DeviceName: func(d string) string {
			if dev, ok := g.authz.Device(d); ok && dev.Name != "" {
				return dev.Name
			}
			return d
		},
		OnChange: func(id string) {
			g.invalidations.push(session.Change{Links: []string{id}})
			g.publishLinkChange(id)
		},
		MayManage: func(c links.Creator, write bool) bool {
			if write {
				return g.authz.AdminAllows(c, "links:write")
			}
			return g.authz.AdminAllows(c, "links:read")
		},
	}
	if err := g.links.Initialize(); err != nil {
		return fmt.Errorf("links: %w", err)
	}
	g.closers = append(g.closers, g.links.Close)
	g.followLinkChanges()
	return nil
}

// linkViewers holds the max_viewers slot of every open link session.
type linkViewers struct {
	mu       sync.Mutex
	releases map[string]func() // by session id
}

// start takes a viewer slot for a link session (session.Registry.OnStart).
func (g *Gateway) linkSessionStart(s *session.Session) error {
	if s.Link == "" {
		return nil
	}
	release, err := g.links.AcquireViewer(s.Link)
	if err != nil {
		return err
	}
	g.linkSlots.mu.Lock()
	g.linkSlots.releases[s.ID] = release
	g.linkSlots.mu.Unlock()
	return nil
}

// sessionEnded releases what a session held and counts why it ended.
func (g *Gateway) sessionEnded(s *session.Session, reason string) {
	g.metrics.sessionEnded(s, reason)
	if s.Link == "" {
		return
	}
	g.linkSlots.mu.Lock()
	release := g.linkSlots.releases[s.ID]
	delete(g.linkSlots.releases, s.ID)
	g.linkSlots.mu.Unlock()
	if release != nil {
		release()
	}
}

// handleShareAssets serves /s/assets/{name} (hls.js and its license).
func (g *Gateway) handleSharePage(ctx *fasthttp.RequestCtx, params ...string) {
	if len(params) == 2 && params[0] == "assets" {
		g.links.HandleAsset(ctx, params[1])
		return
	}
	if len(params) == 1 {
		g.links.HandleViewerPage(ctx, params[0])
		return
	}
	httpapi.WriteError(ctx, fasthttp.StatusNotFound, "no such page")
}

// handleLinkKeys serves POST /api/v1/link-keys/rotate (a new signing key
// becomes current; older keys keep verifying until their links expire) and
// GET /api/v1/link-keys (the key ids, current first).
func (g *Gateway) handleLinkKeys(ctx *fasthttp.RequestCtx, c authz.Caller, parts []string) {
	switch {
	case len(parts) == 1 && ctx.IsGet():
		if !g.authz.AdminAllows(c, "links:read") {
			httpapi.WriteError(ctx, fasthttp.StatusForbidden, "needs an admin key with links:read")
			return
		}
		httpapi.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"keys": g.links.KeyIDs()})
	case len(parts) == 2 && parts[1] == "rotate" && ctx.IsPost():
		if !g.authz.AdminAllows(c, "links:write") {
			httpapi.WriteError(ctx, fasthttp.StatusForbidden, "needs an admin key with links:write")
			return
		}
		kid, err := g.links.RotateKey()
		if err != nil {
			httpapi.WriteError(ctx, fasthttp.StatusServiceUnavailable, "rotating the signing key failed: "+err.Error())
			return
		}
		g.authz.RecordAudit(authz.AuditEntry{Who: callerName(c), What: "POST link-keys/rotate", Allowed: true, Why: "new key " + kid})
		httpapi.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"kid": kid, "keys": g.links.KeyIDs()})
	default:
		httpapi.WriteError(ctx, fasthttp.StatusNotFound, "use GET /api/v1/link-keys or POST /api/v1/link-keys/rotate")
	}
}
