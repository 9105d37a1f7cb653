// Package token verifies viewer JWTs (DESIGN §3) and mints development
// tokens. Keys come from an HS256 secret, PEM public keys (EdDSA, ES256,
// RS256) and a JWKS URL; each key verifies exactly one algorithm, so a token
// cannot choose how it is checked (no alg=none, no HS/RS confusion).
//
// Key selection: a token's kid picks the key when it names one. Each PEM key's
// kid is its RFC 7638 JWK thumbprint (there is no "kid:path" syntax; issuers
// with their own kids publish a JWKS). JWKS keys use the kid of their entry.
// A token whose kid is unknown triggers one JWKS refetch (rate-limited, and
// coalesced across concurrent callers); if the kid is still unknown, or the
// token has no kid, the keys pinned to the header's alg are tried — but only
// when there are at most MaxKeysWithoutKid of them — and a failure is
// reported as ErrUnknownKey when a kid was given, else ErrSignature.
//
// Before any of that the header and payload must be plain JSON objects:
// distinct member names, exp/nbf/iat JSON numbers (see CheckStructure).
package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
)

// MaxTokenBytes bounds a token before any parsing: real viewer tokens are a
// few hundred bytes, and a large one is only work for an attacker.
const MaxTokenBytes = 8 << 10

const minHS256Secret = 32

// MaxKeysWithoutKid is how many keys of its algorithm a token that selects
// none by kid (no kid, or one not in the key set) is tried against. Every
// try is a signature verification, so an unbounded number is CPU for anyone
// who sends a bogus token: a 2,400-key JWKS cost 80 ms per token. Deployers
// with one shared HS256 secret or a few PEM keys (rotation) send no kid;
// a JWKS with many keys always sends one. Over the bound the token is
// refused with ErrUnknownKey naming the count.
const MaxKeysWithoutKid = 4

// Errors returned by Verify, for errors.Is. Every Verify error wraps exactly
// one of them.
var (
	ErrMissing     = errors.New("token: missing")
	ErrTooLarge    = errors.New("token: too large")
	ErrMalformed   = errors.New("token: malformed")
	ErrAlgorithm   = errors.New("token: algorithm not accepted")
	ErrUnknownKey  = errors.New("token: unknown signing key")
	ErrSignature   = errors.New("token: invalid signature")
	ErrExpired     = errors.New("token: expired")
	ErrNotYetValid = errors.New("token: not yet valid")
	ErrIssuer      = errors.New("token: wrong issuer")
	ErrAudience    = errors.New("token: wrong audience")
	ErrClaims      = errors.New("token: invalid claims") // e.g. no exp, no sub
	// ErrNotInitialized is returned when Verify is called before Initialize
	// succeeded.
	ErrNotInitialized = errors.New("token: verifier not initialized")
)

// Claims is what camgate uses from a verified token.
type Claims struct {
	Subject   string
	ExpiresAt time.Time
	ID        string // jti, "" when absent
}

// Verifier checks viewer tokens. Set the fields, call Initialize once, then
// Verify from any number of goroutines; Close stops background JWKS refreshes.
type Verifier struct {
	// HS256Secret, when set (at least 32 bytes), verifies HS256 tokens.
	HS256Secret []byte
	// PublicKeysPEM are PEM public keys or certificates: Ed25519 (EdDSA),
	// P-256 (ES256) or RSA of at least 2048 bits (RS256).
	PublicKeysPEM []string
	// JWKSURL is fetched at Initialize and when a token names an unknown kid;
	// https, or http to a loopback host.
	JWKSURL string
	// Issuer and Audience, when set, must match iss and be one of aud.
	Issuer, Audience string
	// Leeway is the clock skew allowed on exp and nbf. Default 30s.
	Leeway time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// HTTPClient fetches the JWKS. Default: a client with JWKSTimeout.
	HTTPClient *http.Client
	// JWKSMinRefetch is the least time between two JWKS fetches, whatever
	// the number of unknown kids seen. Default 1m.
	JWKSMinRefetch time.Duration
	// JWKSMaxAge is how long a fetched JWKS is trusted before it is refreshed
	// in the background (so a key removed upstream stops working). Default 15m.
	JWKSMaxAge time.Duration
	// JWKSTimeout bounds one JWKS fetch. Default 5s.
	JWKSTimeout time.Duration
	// Logger receives JWKS fetch results. Default: discard.
	Logger *slog.Logger

	static   []*key
	keys     atomic.Pointer[keySet]
	parser   *jwt.Parser
	keyfunc  jwt.Keyfunc
	jwksURL  string
	fetches  singleflight.Group
	bgActive atomic.Bool
	inflight atomic.Bool // a JWKS fetch is running; late callers join it

	fetchedAt atomic.Int64 // UnixNano of the last successful JWKS fetch, 0 if none

	mu          sync.Mutex // guards lastAttempt, closed, and bg.Go against Close's Wait
	lastAttempt time.Time
	closed      bool
	ctx         context.Context
	cancel      context.CancelFunc
	bg          sync.WaitGroup
}

// Initialize applies defaults, parses every key once and fetches the JWKS.
// A bad key is an error naming it ("public_keys[1]: ..."); an unreachable
// JWKS is only logged, and retried when a token needs it.
func (v *Verifier) Initialize() error {
	if v.Leeway == 0 {
		v.Leeway = 30 * time.Second
	}
	if v.Leeway < 0 {
		return fmt.Errorf("token: leeway %s is negative", v.Leeway)
	}
	if v.Now == nil {
		v.Now = time.Now
	}
	if v.JWKSMinRefetch <= 0 {
		v.JWKSMinRefetch = time.Minute
	}
	if v.JWKSMaxAge <= 0 {
		v.JWKSMaxAge = 15 * time.Minute
	}
	if v.JWKSTimeout <= 0 {
		v.JWKSTimeout = 5 * time.Second
	}
	if v.HTTPClient == nil {
		v.HTTPClient = &http.Client{Timeout: v.JWKSTimeout}
	}
	if v.Logger == nil {
		v.Logger = slog.New(slog.DiscardHandler)
	}
	if err := v.parseStatic(); err != nil {
		return err
	}
	if v.JWKSURL != "" {
		if err := checkJWKSURL(v.JWKSURL); err != nil {
			return err
		}
		v.jwksURL = v.JWKSURL
	}
	v.keys.Store(newKeySet(v.static, nil))
	if len(v.static) == 0 && v.jwksURL == "" {
		v.Logger.Warn("no viewer token keys configured: every viewer token will be rejected")
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{algHS256, algEdDSA, algES256, algRS256}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.Leeway),
		jwt.WithTimeFunc(v.Now),
		jwt.WithStrictDecoding(),
	}
	if v.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.Issuer))
	}
	if v.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	v.keyfunc = v.selectKey
	v.ctx, v.cancel = context.WithCancel(context.Background())

	if v.jwksURL != "" {
		v.refetch(v.ctx)
	}
	return nil
}

func (v *Verifier) parseStatic() error {
	v.static = nil
	if len(v.HS256Secret) > 0 {
		if len(v.HS256Secret) < minHS256Secret {
			return fmt.Errorf("token: hs256_secret: must be at least %d bytes, got %d", minHS256Secret, len(v.HS256Secret))
		}
		secret := append([]byte(nil), v.HS256Secret...)
		v.static = append(v.static, &key{alg: algHS256, pub: secret, source: "hs256_secret"})
	}
	for i, text := range v.PublicKeysPEM {
		k, err := parsePEMKey(text)
		if err != nil {
			return fmt.Errorf("token: public_keys[%d]: %w", i, err)
		}
		k.source = fmt.Sprintf("public_keys[%d]", i)
		v.static = append(v.static, k)
	}
	return nil
}

func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("token: jwks_url must be an absolute https URL")
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		ip, err := netip.ParseAddr(host)
		if host != "localhost" && (err != nil || !ip.IsLoopback()) {
			return errors.New("token: jwks_url must use https (plain http only to a loopback host)")
		}
	}
	return nil
}

// Close stops a background JWKS refresh, if one is running, and waits for it.
func (v *Verifier) Close() {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	if v.cancel != nil {
		v.cancel()
	}
	v.bg.Wait()
}

// Fingerprint identifies a token in logs without revealing it: the first 8
// hex characters of its SHA-256.
func Fingerprint(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:4])
}

// Verify checks raw (the bare JWT, without "Bearer ") and returns its claims.
// It never logs the token.
func (v *Verifier) Verify(raw string) (Claims, error) {
	if raw == "" {
		return Claims{}, ErrMissing
	}
	if len(raw) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(raw), MaxTokenBytes)
	}
	if v.parser == nil {
		return Claims{}, ErrNotInitialized
	}
	if err := CheckStructure(raw); err != nil {
		return Claims{}, err
	}
	var rc jwt.RegisteredClaims
	tok, err := v.parser.ParseWithClaims(raw, &rc, v.keyfunc)
	if err != nil {
		return Claims{}, v.classify(tok, err)
	}
	if rc.Subject == "" {
		return Claims{}, fmt.Errorf("%w: no sub", ErrClaims)
	}
	c := Claims{Subject: rc.Subject, ID: rc.ID}
	if rc.ExpiresAt != nil {
		c.ExpiresAt = rc.ExpiresAt.Time
	}
	return c, nil
}

// selectKey is the jwt.Keyfunc: it returns only keys pinned to the token's
// alg (the parser has already refused any alg outside the accepted four).
func (v *Verifier) selectKey(t *jwt.Token) (any, error) {
	if _, crit := t.Header["crit"]; crit {
		return nil, fmt.Errorf("%w: crit header extensions are not supported", ErrMalformed)
	}
	alg := t.Method.Alg()
	ks := v.keys.Load()
	v.maybeRefreshInBackground()

	kidVal, hasKid := t.Header["kid"]
	kid, isString := kidVal.(string)
	if hasKid && !isString {
		return nil, fmt.Errorf("%w: kid is not a string", ErrMalformed)
	}
	if kid != "" {
		k := ks.byKid[kid]
		if k == nil && v.jwksURL != "" {
			ks = v.refetch(v.ctx)
			k = ks.byKid[kid]
		}
		if k != nil {
			if k.alg != alg {
				return nil, fmt.Errorf("%w: key %q verifies %s, token says %s", ErrAlgorithm, shortKid(kid), k.alg, alg)
			}
			return k.pub, nil
		}
	} else if ks.byAlg[alg] == nil && v.jwksURL != "" && ks.jwksCount == 0 {
		ks = v.refetch(v.ctx) // the JWKS may not have been reachable yet
	}
	cands := ks.byAlg[alg]
	if cands == nil {
		if kid != "" {
			return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, shortKid(kid))
		}
		return nil, fmt.Errorf("%w: no key for %s", ErrUnknownKey, alg)
	}
	if n := ks.algCount[alg]; n > MaxKeysWithoutKid {
		if kid != "" {
			return nil, fmt.Errorf("%w: kid %q is not in the key set, which has %d keys of alg %s (at most %d are tried for a token whose kid selects none)",
				ErrUnknownKey, shortKid(kid), n, alg, MaxKeysWithoutKid)
		}
		return nil, fmt.Errorf("%w: token has no kid and the key set has %d keys of alg %s (at most %d are tried without a kid)",
			ErrUnknownKey, n, alg, MaxKeysWithoutKid)
	}
	return cands, nil
}

// classify maps a jwt error to exactly one of this package's errors.
func (v *Verifier) classify(tok *jwt.Token, err error) error {
	var ours error
	for _, e := range []error{ErrMalformed, ErrAlgorithm, ErrUnknownKey} {
		if errors.Is(err, e) {
			ours = e
			break
		}
	}
	switch {
	case ours != nil:
	case errors.Is(err, jwt.ErrTokenMalformed):
		ours = ErrMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		ours = ErrAlgorithm // alg missing or unknown to the library (incl. none)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		ours = ErrSignature
		if tok == nil || tok.Method == nil || !acceptedAlg(tok.Method.Alg()) {
			ours = ErrAlgorithm
		} else if kid, _ := tok.Header["kid"].(string); kid != "" && v.keys.Load().byKid[kid] == nil {
			ours = ErrUnknownKey
		}
	case errors.Is(err, jwt.ErrTokenExpired):
		ours = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		ours = ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		ours = ErrIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		ours = ErrAudience
	default:
		ours = ErrClaims
	}
	return fmt.Errorf("%w: %v", ours, err)
}

// shortKid bounds an attacker-chosen kid before it goes into an error message
// (and from there into logs).
func shortKid(kid string) string {
	if len(kid) > 64 {
		return kid[:64] + "…"
	}
	return kid
}

func acceptedAlg(alg string) bool {
	switch alg {
	case algHS256, algEdDSA, algES256, algRS256:
		return true
	}
	return false
}
