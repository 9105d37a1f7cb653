package gateway

import (
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/internal/httpjson"
	"github.com/camgate/camgate/links"
)

// startLinks opens the share-link service: links are decided by the
// enforcement point's link policy (their creator's current rights and
// reach), and any change to a link re-checks its sessions.
func (g *Gateway) startLinks() error {
	from, err := g.linkFeedPosition()
	if err != nil {
		return fmt.Errorf("links: %w", err)
	}
	g.links = &links.Service{
		DataDir:   g.Config.DataDir,
		Store:     g.linksStore(),
		PublicURL: g.Config.PublicURL,
		Logger:    g.Logger.With("component", "links"),
		Policy:    access.LinkPolicy{Authz: g.authz},
		OnChange: func(id string) {
			// The other nodes learn it from the link feed (followLinkChanges).
			g.invalidations.push(session.Change{Links: []string{id}})
		},
	}
	if err := g.links.Initialize(); err != nil {
		return fmt.Errorf("links: %w", err)
	}
	g.closers = append(g.closers, g.links.Close)
	g.followLinkChanges(from)
	return nil
}

// sessionEnded releases what a session held and counts why it ended.
func (g *Gateway) sessionEnded(s *session.Session, end session.EndReason, _ string) {
	g.metrics.sessionEnded(end)
	g.access.SessionEnded(s)
}

// handleSharePage serves /s/{token} (the viewer page) and /s/assets/{name}
// (hls.js and its license). The page's token counts against the failure
// limiter like every other credential.
func (g *Gateway) handleSharePage(ctx *fasthttp.RequestCtx, params ...string) error {
	if len(params) == 2 && params[0] == "assets" {
		g.links.HandleAsset(ctx, params[1])
		return nil
	}
	if len(params) != 1 {
		return fmt.Errorf("%w: no such page", httpjson.ErrNotFound)
	}
	if _, err := g.access.Authenticate(ctx, params[0]); errors.Is(err, session.ErrRateLimited) {
		return err
	}
	g.links.HandleViewerPage(ctx, params[0])
	return nil
}

// handleLinkKeys serves POST /api/v1/link-keys/rotate (a new signing key
// becomes current; older keys keep verifying until their links expire) and
// GET /api/v1/link-keys (the key ids, current first).
func (g *Gateway) handleLinkKeys(ctx *fasthttp.RequestCtx, p access.Principal, parts []string) error {
	c := p.Caller()
	switch {
	case len(parts) == 1 && ctx.IsGet():
		if !g.authz.AdminAllows(c, "links:read") {
			return fmt.Errorf("%w: needs an admin key with links:read", access.ErrForbidden)
		}
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"keys": g.links.KeyIDs()})
	case len(parts) == 2 && parts[1] == "rotate" && ctx.IsPost():
		if !g.authz.AdminAllows(c, "links:write") {
			return fmt.Errorf("%w: needs an admin key with links:write", access.ErrForbidden)
		}
		kid, err := g.links.RotateKey()
		if err != nil {
			return fmt.Errorf("rotating the signing key: %w", err)
		}
		g.authz.RecordAudit(authz.AuditEntry{Who: p.String(), What: "POST link-keys/rotate", Allowed: true, Why: "new key " + kid})
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"kid": kid, "keys": g.links.KeyIDs()})
	case len(parts) <= 2:
		return fmt.Errorf("%w: use GET /api/v1/link-keys or POST /api/v1/link-keys/rotate", httpjson.ErrMethodNotAllowed)
	default:
		return fmt.Errorf("%w: no such endpoint", httpjson.ErrNotFound)
	}
	return nil
}
