package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/creds"
	credstore "github.com/camgate/camgate/gateway/creds/redisstore"
	"github.com/camgate/camgate/gateway/session"
)

// credChannel carries the ids of revoked stream credentials between nodes,
// so a revoke on one node ends the credential's viewers on every node.
const credChannel = "camgate:stream-credentials:revoked"

// startCreds opens the stream-credential service (its store beside the
// links': Redis with redis.url, else DATA/stream-credentials.db); a revoke
// re-checks, and so ends, the credential's sessions here and on the other
// nodes.
func (g *Gateway) startCreds() error {
	g.creds = &creds.Service{
		DataDir:     g.Config.DataDir,
		OutageGrace: time.Duration(g.Config.Redis.OutageGrace),
		Logger:      g.Logger.With("component", "stream-credentials"),
		OnRevoke: func(id string) {
			g.invalidations.push(session.Change{Credentials: []string{id}})
			g.publishCredRevoke(id)
		},
	}
	if g.redis != nil {
		g.creds.Store = credstore.New(g.redis.client, "")
	}
	if err := g.creds.Initialize(); err != nil {
		return fmt.Errorf("stream credentials: %w", err)
	}
	g.closers = append(g.closers, g.creds.Close)
	g.followCredRevokes()
	return nil
}

// handleStreamCredentials serves /api/v1/stream-credentials.
func (g *Gateway) handleStreamCredentials(ctx *fasthttp.RequestCtx, p access.Principal, parts []string) error {
	return g.creds.HandleAPI(ctx, access.CredentialPolicy{Authz: g.authz, Links: g.links}, p.Caller(), parts)
}

// rtspAuthMethods maps rtsp.auth_methods to gortsplib's.
func rtspAuthMethods(names []string) []auth.VerifyMethod {
	var out []auth.VerifyMethod
	for _, n := range names {
		switch n {
		case "basic":
			out = append(out, auth.VerifyMethodBasic)
		case "digest":
			out = append(out, auth.VerifyMethodDigestMD5)
		}
	}
	return out
}

func (g *Gateway) publishCredRevoke(id string) {
	if g.redis == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.redis.client.Publish(ctx, credChannel, id).Err(); err != nil {
		g.Logger.Warn("announcing a stream-credential revoke to the other nodes", "credential", id, "error", err)
	}
}

// followCredRevokes applies the other nodes' revokes here. Pub/Sub is
// at-most-once: a node that missed one stops admitting the credential once
// its cached copy is older than creds.Service.CacheTTL (1 min).
func (g *Gateway) followCredRevokes() {
	if g.redis == nil {
		return
	}
	ps := g.redis.client.Subscribe(context.Background(), credChannel)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ps.Channel() {
			g.creds.Forget(msg.Payload)
			g.invalidations.push(session.Change{Credentials: []string{msg.Payload}})
		}
	}()
	g.closers = append(g.closers, func() { _ = ps.Close(); <-done })
}
