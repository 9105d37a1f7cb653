package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintHS256 signs a development viewer token: sub, iat, exp = now+ttl and a
// random jti, with the HS256 secret (at least 32 bytes). It is what
// `camgate token --sub alice --ttl 1h` prints.
func MintHS256(secret []byte, sub string, ttl time.Duration, now time.Time) (string, error) {
	return mint(secret, jwt.RegisteredClaims{Subject: sub}, ttl, now)
}

// Mint is MintHS256 with the verifier's secret, clock, issuer and audience,
// so the token passes this verifier's checks.
func (v *Verifier) Mint(sub string, ttl time.Duration) (string, error) {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	rc := jwt.RegisteredClaims{Subject: sub, Issuer: v.Issuer}
	if v.Audience != "" {
		rc.Audience = jwt.ClaimStrings{v.Audience}
	}
	return mint(v.HS256Secret, rc, ttl, now())
}

func mint(secret []byte, rc jwt.RegisteredClaims, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) < minHS256Secret {
		return "", fmt.Errorf("token: mint: HS256 secret must be at least %d bytes, got %d", minHS256Secret, len(secret))
	}
	if rc.Subject == "" {
		return "", errors.New("token: mint: sub is empty")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("token: mint: ttl %s is not positive", ttl)
	}
	var id [16]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	rc.ID = base64.RawURLEncoding.EncodeToString(id[:])
	rc.IssuedAt = jwt.NewNumericDate(now)
	rc.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, rc).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("token: mint: %w", err)
	}
	return s, nil
}
