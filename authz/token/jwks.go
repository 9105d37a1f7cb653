package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// maxJWKSBytes bounds a JWKS response; real ones are a few kilobytes.
const maxJWKSBytes = 1 << 20

// refetch fetches the JWKS unless a fetch was attempted less than
// JWKSMinRefetch ago, and returns the key set to use. Concurrent callers
// share one fetch. A failed fetch keeps the previous keys.
func (v *Verifier) refetch(ctx context.Context) *keySet {
	if !v.fetchAllowed() && !v.inflight.Load() {
		// Rate limited, and no fetch to wait for: the last one has already
		// stored its keys (inflight is cleared only after the store).
		return v.keys.Load()
	}
	ks, _, _ := v.fetches.Do("jwks", func() (any, error) {
		// Re-check under the flight: a caller that arrives just after a fetch
		// finished must not start another one.
		if !v.claimAttempt() {
			return v.keys.Load(), nil
		}
		defer v.inflight.Store(false)
		v.fetchAndStore(ctx)
		return v.keys.Load(), nil
	})
	return ks.(*keySet)
}

func (v *Verifier) fetchAllowed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.lastAttempt.IsZero() || v.Now().Sub(v.lastAttempt) >= v.JWKSMinRefetch
}

// claimAttempt records a fetch attempt if the rate limit allows one.
func (v *Verifier) claimAttempt() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.Now()
	if !v.lastAttempt.IsZero() && now.Sub(v.lastAttempt) < v.JWKSMinRefetch {
		return false
	}
	v.lastAttempt = now
	v.inflight.Store(true)
	return true
}

func (v *Verifier) fetchAndStore(ctx context.Context) {
	keys, skipped, err := v.fetchJWKS(ctx)
	if err != nil {
		v.Logger.Warn("JWKS fetch failed; keeping the previous keys", "url", v.jwksURL, "error", err)
		return
	}
	for _, s := range skipped {
		v.Logger.Info("JWKS entry skipped", "url", v.jwksURL, "reason", s)
	}
	v.keys.Store(newKeySet(v.static, keys))
	v.fetchedAt.Store(v.Now().UnixNano())
	v.Logger.Debug("JWKS fetched", "url", v.jwksURL, "keys", len(keys))
}

// maybeRefreshInBackground starts one background refetch when the JWKS is
// older than JWKSMaxAge; Verify keeps using the cached keys meanwhile.
func (v *Verifier) maybeRefreshInBackground() {
	if v.jwksURL == "" || v.bgActive.Load() {
		return
	}
	// Lock-free until the cache is actually stale: this runs on every Verify.
	fetched := v.fetchedAt.Load()
	if fetched == 0 || v.Now().UnixNano()-fetched < int64(v.JWKSMaxAge) || !v.fetchAllowed() {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed || !v.bgActive.CompareAndSwap(false, true) {
		return
	}
	v.bg.Go(func() {
		defer v.bgActive.Store(false)
		v.refetch(v.ctx)
	})
}

// fetchJWKS downloads and parses the key set. Entries camgate cannot use
// (other algorithms, encryption keys) are skipped with a reason, not fatal:
// identity providers often publish several kinds.
func (v *Verifier) fetchJWKS(ctx context.Context) (keys []*key, skipped []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, v.JWKSTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.jwksURL, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := v.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(body) > maxJWKSBytes {
		return nil, nil, fmt.Errorf("response larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

func parseJWKS(body []byte) (keys []*key, skipped []string, err error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("bad JWKS JSON: %w", err)
	}
	if set.Keys == nil {
		return nil, nil, errors.New(`bad JWKS: no "keys" array`)
	}
	for i, j := range set.Keys {
		k, err := parseJWK(j)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d] (kid %q): %v", i, j.Kid, err))
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}
