package gateway

import (
	"sync"
	"time"

	"github.com/camgate/camgate/authz/token"
)

// tokenCache remembers verified viewer tokens until they expire, so the
// repeated checks of one viewer (RTSP DESCRIBE/SETUP/PLAY, every archive
// segment) cost a map lookup instead of a signature verification. It lives
// in the reloadable settings: a key change (SIGHUP) starts a new cache.
// Only successful verifications are cached.
type tokenCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]token.Claims
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[string]token.Claims)}
}

// get returns the claims of a token verified before and still unexpired.
func (c *tokenCache) get(raw string, now time.Time) (token.Claims, bool) {
	c.mu.RLock()
	cl, ok := c.entries[raw]
	c.mu.RUnlock()
	if !ok || !now.Before(cl.ExpiresAt) {
		return token.Claims{}, false
	}
	return cl, true
}

func (c *tokenCache) put(raw string, cl token.Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k := range c.entries { // evict an arbitrary entry: map order is random
			delete(c.entries, k)
			break
		}
	}
	c.entries[raw] = cl
}
