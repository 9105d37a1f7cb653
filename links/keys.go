package links

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// signKey is a parsed SigningKey.
type signKey struct {
	kid         string
	priv        ed25519.PrivateKey
	pub         ed25519.PublicKey
	createdAt   time.Time
	retireAfter time.Time
}

// keySet is one immutable view of the signing keys.
type keySet struct {
	byKid   map[string]*signKey
	current *signKey // newest by CreatedAt, then KID; nil when there is none
	jwks    []byte
}

// loadKeys reads every key from the store and publishes a new key set.
// When the set of kids changed, the verification cache is dropped, so a
// token of a dropped key stops verifying at once.
func (s *Service) loadKeys(ctx context.Context) error {
	recs, err := s.Store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("links: load signing keys: %w", err)
	}
	ks := &keySet{byKid: make(map[string]*signKey, len(recs))}
	for _, r := range recs {
		if len(r.PrivateKey) != ed25519.PrivateKeySize {
			s.Logger.Warn("skipping malformed link signing key", "kid", r.KID)
			continue
		}
		priv := ed25519.PrivateKey(slices.Clone(r.PrivateKey))
		k := &signKey{kid: r.KID, priv: priv, pub: priv.Public().(ed25519.PublicKey), createdAt: r.CreatedAt, retireAfter: r.RetireAfter}
		ks.byKid[r.KID] = k
		if c := ks.current; c == nil || k.createdAt.After(c.createdAt) || (k.createdAt.Equal(c.createdAt) && k.kid > c.kid) {
			ks.current = k
		}
	}
	ks.jwks = buildJWKS(ks)
	old := s.keys.Swap(ks)
	if old != nil && !sameKids(old, ks) {
		s.vcache.Store(newVerifyCache(s.VerifyCacheSize))
	}
	return nil
}

func sameKids(a, b *keySet) bool {
	if len(a.byKid) != len(b.byKid) {
		return false
	}
	for kid := range a.byKid {
		if b.byKid[kid] == nil {
			return false
		}
	}
	return true
}

// reloadKeys reloads the key set now (after a local change).
func (s *Service) reloadKeys() error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	s.lastLoad = s.Now()
	return s.loadKeys(s.ctx)
}

// refreshForKid reloads the key set because a token named an unknown kid
// (another node rotated), at most once per KeyRefreshMin.
func (s *Service) refreshForKid(kid string) *signKey {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if k := s.keys.Load().byKid[kid]; k != nil {
		return k // loaded by a concurrent caller
	}
	now := s.Now()
	if !s.lastLoad.IsZero() && now.Sub(s.lastLoad) < s.KeyRefreshMin {
		return nil
	}
	s.lastLoad = now
	if err := s.loadKeys(s.ctx); err != nil {
		s.Logger.Warn("reloading link signing keys", "error", err)
		return nil
	}
	return s.keys.Load().byKid[kid]
}

// RotateKey creates a new signing key and makes it current; older keys keep
// verifying the links they signed until those expire. It returns the new kid.
func (s *Service) RotateKey() (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("links: generate key: %w", err)
	}
	created := s.Now().UTC()
	// The newest key is current: make sure the new one is, even when the
	// clock did not move since the last rotation.
	if c := s.keys.Load().current; c != nil && !created.After(c.createdAt) {
		created = c.createdAt.Add(time.Nanosecond)
	}
	rec := SigningKey{KID: thumbprint(pub), PrivateKey: priv, CreatedAt: created}
	err = s.Store.UpdateKey(s.ctx, rec.KID, func(cur *SigningKey) (*SigningKey, error) {
		if cur != nil {
			return nil, ErrExists
		}
		r := rec.Clone()
		return &r, nil
	})
	if err != nil {
		return "", fmt.Errorf("links: store new key: %w", err)
	}
	s.Logger.Info("link signing key rotated", "kid", rec.KID)
	if err := s.reloadKeys(); err != nil {
		return rec.KID, err
	}
	if err := s.Sweep(); err != nil {
		s.Logger.Warn("links sweep after rotation", "error", err)
	}
	return rec.KID, nil
}

// KeyIDs lists the kids of the key set, the current one first.
func (s *Service) KeyIDs() []string {
	ks := s.keys.Load()
	out := make([]string, 0, len(ks.byKid))
	for kid := range ks.byKid {
		if ks.current == nil || kid != ks.current.kid {
			out = append(out, kid)
		}
	}
	sort.Strings(out)
	if ks.current != nil {
		out = append([]string{ks.current.kid}, out...)
	}
	return out
}

// reserveKey extends the current key's RetireAfter to cover a link valid
// until notAfter, before a token signed with it exists. A key dropped by
// another node meanwhile makes it reload and retry with the new current key.
func (s *Service) reserveKey(notAfter time.Time) (*signKey, error) {
	for attempt := 0; ; attempt++ {
		k := s.keys.Load().current
		if k == nil {
			return nil, errors.New("links: no signing key")
		}
		err := s.Store.UpdateKey(s.ctx, k.kid, func(cur *SigningKey) (*SigningKey, error) {
			if cur == nil {
				return nil, ErrNotFound
			}
			if notAfter.After(cur.RetireAfter) {
				cur.RetireAfter = notAfter
			}
			return cur, nil
		})
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, ErrNotFound) || attempt > 0 {
			return nil, fmt.Errorf("links: reserve signing key: %w", err)
		}
		if err := s.reloadKeys(); err != nil {
			return nil, err
		}
	}
}

// JWKS returns the public keys as a JWK Set (RFC 7517, OKP/Ed25519 per
// RFC 8037), the current key first.
func (s *Service) JWKS() []byte {
	return s.keys.Load().jwks
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

func buildJWKS(ks *keySet) []byte {
	kids := make([]string, 0, len(ks.byKid))
	for kid := range ks.byKid {
		kids = append(kids, kid)
	}
	sort.Slice(kids, func(i, j int) bool {
		a, b := ks.byKid[kids[i]], ks.byKid[kids[j]]
		if a == ks.current || b == ks.current {
			return a == ks.current
		}
		return kids[i] < kids[j]
	})
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(kids))}
	for _, kid := range kids {
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: b64(ks.byKid[kid].pub), Kid: kid, Alg: "EdDSA", Use: "sig"})
	}
	b, _ := json.Marshal(set)
	return b
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key, used
// as its kid (stable, and anyone holding the JWKS can recompute it).
func thumbprint(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + b64(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
