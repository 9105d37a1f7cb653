package links

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/camgate/camgate/authz/token"
	"github.com/golang-jwt/jwt/v5"
)

// Audience is the aud of every link token: a link token is not a viewer
// token of the deployer's backend, and the other way round.
const Audience = "camgate-link"

// MaxTokenBytes bounds a link token before any parsing.
const MaxTokenBytes = 4096

// tokenClaims is the JWT payload of a link token.
type tokenClaims struct {
	jwt.RegisteredClaims
	// Device is the camera the link opens (the page needs it before any
	// registry lookup).
	Device string `json:"cam"`
}

// Fingerprint identifies a token in logs without revealing it: the first 8
// hex characters of its SHA-256.
func Fingerprint(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:4])
}

// IsLinkToken tells, without verifying anything, whether raw looks like a
// camgate link token (its payload names the link audience), so the gateway
// can route a token to Verify or to the viewer-token verifier.
func IsLinkToken(raw string) bool {
	if len(raw) > MaxTokenBytes || strings.Count(raw, ".") != 2 {
		return false
	}
	var c tokenClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &c); err != nil {
		return false
	}
	return slices.Contains(c.Audience, Audience) && strings.HasPrefix(c.Subject, "link:")
}

// mint signs the token of link l with key k.
func mint(k *signKey, l *Link) (string, error) {
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "camgate",
			Subject:   "link:" + l.ID,
			Audience:  jwt.ClaimStrings{Audience},
			ID:        l.ID,
			NotBefore: jwt.NewNumericDate(l.NotBefore),
			ExpiresAt: jwt.NewNumericDate(l.NotAfter),
			IssuedAt:  jwt.NewNumericDate(l.CreatedAt),
		},
		Device: l.Device,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.kid
	s, err := t.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("links: sign token: %w", err)
	}
	return s, nil
}

// Verify checks a link token: EdDSA signature by a known key, audience and
// subject, and the nbf/exp window (with Leeway). It returns ErrInvalid,
// ErrUnknownKey, ErrNotYetValid or ErrExpired (the latter two with the
// claims filled in, for a friendly message); the registry state is Decide's.
// A token verified once is remembered (keyed by its exact text), so a
// repeated Verify costs a map lookup, not an Ed25519 verification.
func (s *Service) Verify(raw string) (Claims, error) {
	now := s.Now()
	vc := s.vcache.Load()
	if c, ok := vc.get(raw); ok {
		return c, s.window(c, now)
	}
	c, err := s.verifySignature(raw)
	if err != nil {
		return Claims{}, err
	}
	vc.put(raw, c)
	return c, s.window(c, now)
}

func (s *Service) window(c Claims, now time.Time) error {
	if now.Add(s.Leeway).Before(c.NotBefore) {
		return ErrNotYetValid
	}
	if !now.Add(-s.Leeway).Before(c.NotAfter) {
		return ErrExpired
	}
	return nil
}

func (s *Service) verifySignature(raw string) (Claims, error) {
	if raw == "" || len(raw) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: empty or over %d bytes", ErrInvalid, MaxTokenBytes)
	}
	// Same plain-JSON rule as viewer tokens: no duplicate members, NumericDates only.
	if err := token.CheckStructure(raw); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var tc tokenClaims
	_, err := s.parser.ParseWithClaims(raw, &tc, s.keyFor)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return Claims{}, ErrUnknownKey
		}
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case tc.ID == "" || tc.Subject != "link:"+tc.ID:
		return Claims{}, fmt.Errorf("%w: sub and jti do not name one link", ErrInvalid)
	case !slices.Contains(tc.Audience, Audience):
		return Claims{}, fmt.Errorf("%w: audience", ErrInvalid)
	case tc.ExpiresAt == nil || tc.NotBefore == nil:
		return Claims{}, fmt.Errorf("%w: nbf and exp are required", ErrInvalid)
	case tc.Device == "":
		return Claims{}, fmt.Errorf("%w: no camera", ErrInvalid)
	}
	return Claims{LinkID: tc.ID, Device: tc.Device, NotBefore: tc.NotBefore.Time, NotAfter: tc.ExpiresAt.Time}, nil
}

// keyFor is the jwt.Keyfunc: the parser has already pinned the algorithm
// to EdDSA; the kid must name one of our keys.
func (s *Service) keyFor(t *jwt.Token) (any, error) {
	if _, crit := t.Header["crit"]; crit {
		return nil, errors.New("crit header extensions are not supported")
	}
	if t.Method != jwt.SigningMethodEdDSA {
		return nil, errors.New("unexpected signing method")
	}
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("no kid")
	}
	k := s.keys.Load().byKid[kid]
	if k == nil {
		k = s.refreshForKid(kid)
	}
	if k == nil {
		return nil, ErrUnknownKey
	}
	return k.pub, nil
}

// verifyCache remembers verified tokens. When full it is emptied rather than
// evicting one by one: the bound matters, precise recency does not.
type verifyCache struct {
	max int
	mu  sync.RWMutex
	m   map[string]Claims
}

func newVerifyCache(max int) *verifyCache {
	if max < 0 {
		return &verifyCache{max: -1}
	}
	return &verifyCache{max: max, m: make(map[string]Claims)}
}

func (c *verifyCache) get(raw string) (Claims, bool) {
	if c.max < 0 {
		return Claims{}, false
	}
	c.mu.RLock()
	v, ok := c.m[raw]
	c.mu.RUnlock()
	return v, ok
}

func (c *verifyCache) put(raw string, v Claims) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	// The caller's string may alias a request buffer: keep our own copy.
	c.m[strings.Clone(raw)] = v
}
