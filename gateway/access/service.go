package access

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/token"
	"github.com/camgate/camgate/gateway/creds"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/links"
)

// SessionCounter is what access needs from the session registry to apply
// the session limits.
type SessionCounter interface {
	CountSubject(subject string) int
	CountCamera(camera string) int
}

// Settings are the reloadable parts of enforcement, swapped as a whole
// (SIGHUP) so that a request sees one consistent set.
type Settings struct {
	// Verifier checks viewer tokens (required); access closes the one it
	// replaces.
	Verifier *token.Verifier
	// AuthFailuresPerMinute blocks a client IP on every edge for the rest
	// of the minute once it has presented that many bad credentials
	// (0: no limit).
	AuthFailuresPerMinute int
	// MaxSessionsPerSubject and MaxSessionsPerCamera cap open sessions on
	// this node (0: no limit).
	MaxSessionsPerSubject, MaxSessionsPerCamera int
	// TokenCacheSize bounds the verified-token cache (default 16384).
	TokenCacheSize int

	tokens   *tokenCache
	failures *session.FailureLimiter
}

// Service is the enforcement point. Its fields are set before Initialize
// and not changed afterwards; the settings are swapped by Apply.
type Service struct {
	// Authz is the permission service (required).
	Authz *authz.Service
	// Links is the share-link registry (required).
	Links *links.Service
	// Creds verifies stream credentials (RTSP Basic/Digest with a camgate
	// username); nil refuses them as bad credentials.
	Creds *creds.Service
	// Sessions counts open sessions for the limits (required).
	Sessions SessionCounter
	// Counters receives admission outcomes (default: none).
	Counters Counters
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RelaySecret, when set, admits other nodes' relay tokens (relay.go):
	// the cluster's shared secret.
	RelaySecret []byte
	// Peers reads the cluster membership a relay token is bound to; nil
	// refuses every relay token.
	Peers RelayPeers
	// RelayRecheck is how often an open relay session is re-checked
	// against the membership (default 2s; the gateway uses
	// cluster.lease_ttl / 3, the heartbeat period).
	RelayRecheck time.Duration

	settings atomic.Pointer[Settings]
	slots    linkSlots
}

// Initialize checks the required fields and applies the first settings.
func (s *Service) Initialize(set Settings) error {
	if s.Authz == nil || s.Links == nil || s.Sessions == nil {
		return errors.New("access: Authz, Links and Sessions are required")
	}
	if s.Counters == nil {
		s.Counters = noCounters{}
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.RelayRecheck <= 0 {
		s.RelayRecheck = 2 * time.Second
	}
	s.slots.releases = make(map[string]func())
	return s.Apply(set)
}

// Apply swaps in new settings (a reload): the token cache starts empty, the
// failure counts start again, and the previous verifier is closed.
func (s *Service) Apply(set Settings) error {
	if set.Verifier == nil {
		return errors.New("access: Settings.Verifier is required")
	}
	if set.TokenCacheSize <= 0 {
		set.TokenCacheSize = 16384
	}
	set.tokens = newTokenCache(set.TokenCacheSize)
	set.failures = &session.FailureLimiter{Max: set.AuthFailuresPerMinute, Window: time.Minute, Now: s.Now}
	if prev := s.settings.Swap(&set); prev != nil {
		prev.Verifier.Close()
	}
	return nil
}

// Close closes the current verifier.
func (s *Service) Close() {
	if set := s.settings.Load(); set != nil {
		set.Verifier.Close()
	}
}

// Authenticate verifies a viewer or share-link token presented at any
// edge. A client IP over its failure budget is refused (429) before
// anything is verified, whatever the credential, and every bad credential
// counts against it. An empty token is ErrUnauthenticated but is not a
// guess and does not count (RTSP clients ask without credentials first).
func (s *Service) Authenticate(ctx context.Context, raw string) (Principal, error) {
	set := s.settings.Load()
	ip := session.RemoteIP(ctx)
	if err := set.failures.Check(ip); err != nil {
		return Principal{}, err
	}
	var p Principal
	var err error
	if IsRelayToken(raw) {
		p, err = s.authenticateRelay(ctx, raw, ip)
	} else {
		p, err = s.verify(set, raw)
	}
	// A membership that could not be read (503) is no guess.
	if err != nil && raw != "" && !errors.Is(err, session.ErrUnavailable) {
		set.failures.Fail(ip)
	}
	return p, err
}

// AuthenticateAPI authenticates the bearer credential of an API call: an
// admin key, else a viewer token (share links are not API callers). The
// failure limiter applies as on every other edge, so admin keys cannot be
// guessed faster than tokens.
func (s *Service) AuthenticateAPI(ctx context.Context, bearer string) (Principal, error) {
	set := s.settings.Load()
	ip := session.RemoteIP(ctx)
	if err := set.failures.Check(ip); err != nil {
		return Principal{}, err
	}
	if bearer == "" {
		return Principal{}, fmt.Errorf("%w: send Authorization: Bearer <admin key or viewer token>", session.ErrUnauthenticated)
	}
	if c, ok := s.Authz.Authenticate(bearer); ok {
		return FromCaller(c), nil
	}
	p, err := s.verify(set, bearer)
	if err == nil && p.Kind != KindSubject {
		err = fmt.Errorf("%w: a share-link token cannot call the API", session.ErrUnauthenticated)
	}
	if err != nil {
		set.failures.Fail(ip)
		return Principal{}, err
	}
	return p, nil
}

// verify checks a token against the cache, then the link verifier or the
// viewer verifier.
func (s *Service) verify(set *Settings, raw string) (Principal, error) {
	if raw == "" {
		return Principal{}, fmt.Errorf("%w: no token", session.ErrUnauthenticated)
	}
	now := s.Now()
	if p, ok := set.tokens.get(raw, now); ok {
		if p.Kind != KindLink {
			return p, nil
		}
		// A link token's window (with the links leeway) is re-checked on
		// every use; its registry state is Decide's.
		if _, err := s.Links.Verify(raw); err != nil {
			return Principal{}, fmt.Errorf("%w: %w", session.ErrUnauthenticated, err)
		}
		return p, nil
	}
	if links.IsLinkToken(raw) {
		c, err := s.Links.Verify(raw)
		if err != nil {
			return Principal{}, fmt.Errorf("%w: %w", session.ErrUnauthenticated, err)
		}
		p := Principal{Kind: KindLink, ID: c.LinkID, Device: c.Device}
		set.tokens.put(raw, p, c.NotAfter)
		return p, nil
	}
	c, err := set.Verifier.Verify(raw)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", session.ErrUnauthenticated, err)
	}
	p := Principal{Kind: KindSubject, ID: c.Subject}
	set.tokens.put(raw, p, c.ExpiresAt)
	return p, nil
}

// fingerprint names a token in logs without revealing it.
func fingerprint(raw string) string { return token.Fingerprint(raw) }
