package access

import (
	"sync"
	"time"
)

// verified is a token that verified: its principal and the end of its
// validity. Link tokens keep their claims' window, re-checked on each hit.
type verified struct {
	p       Principal
	expires time.Time
}

// tokenCache remembers verified tokens — viewer JWTs and share-link tokens
// alike — until they expire, so the repeated checks of one viewer (RTSP
// DESCRIBE/SETUP/PLAY, every archive request, API calls) cost a map lookup
// instead of a signature verification, and tell a link token from a viewer
// token without parsing it. It lives in the reloadable settings: a key
// change (SIGHUP) starts a new cache. Only successful verifications are
// cached. One RWMutex guards the map.
type tokenCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]verified
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[string]verified)}
}

// get returns the principal of a token verified before and still unexpired.
func (c *tokenCache) get(raw string, now time.Time) (Principal, bool) {
	c.mu.RLock()
	v, ok := c.entries[raw]
	c.mu.RUnlock()
	if !ok || !now.Before(v.expires) {
		return Principal{}, false
	}
	return v.p, true
}

func (c *tokenCache) put(raw string, p Principal, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k := range c.entries { // evict an arbitrary entry: map order is random
			delete(c.entries, k)
			break
		}
	}
	c.entries[raw] = verified{p: p, expires: expires}
}
