package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	testNow    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// testKeys are generated once per test binary: RSA generation is slow under -race.
type testKeys struct {
	ed     ed25519.PrivateKey
	ec     *ecdsa.PrivateKey
	rsa    *rsa.PrivateKey
	edPEM  string
	ecPEM  string
	rsaPEM string
}

var keysOnce = sync.OnceValues(func() (*testKeys, error) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	k := &testKeys{ed: ed, ec: ec, rsa: rk}
	for _, p := range []struct {
		dst *string
		pub any
	}{{&k.edPEM, ed.Public()}, {&k.ecPEM, &ec.PublicKey}, {&k.rsaPEM, &rk.PublicKey}} {
		if *p.dst, err = pemPublic(p.pub); err != nil {
			return nil, err
		}
	}
	return k, nil
})

func keys(t testing.TB) *testKeys {
	t.Helper()
	k, err := keysOnce()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemPublic(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

func mustThumbprint(t testing.TB, pub any) string {
	t.Helper()
	kid, err := thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// claims returns valid claims for testNow; callers edit the map.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "alice", "iss": "backend", "aud": "camgate", "jti": "j1",
		"iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix(),
	}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawToken builds a token from a header and payload JSON and a signature,
// for inputs no honest library would produce.
func rawToken(header, payload string, sig []byte) string {
	e := base64.RawURLEncoding.EncodeToString
	return e([]byte(header)) + "." + e([]byte(payload)) + "." + e(sig)
}

func newVerifier(t testing.TB, v *Verifier) *Verifier {
	t.Helper()
	if v.Now == nil {
		v.Now = func() time.Time { return testNow }
	}
	if err := v.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// sentinels are every error Verify may wrap; each failure wraps exactly one.
var sentinels = []error{
	ErrMissing, ErrTooLarge, ErrMalformed, ErrAlgorithm, ErrUnknownKey, ErrSignature,
	ErrExpired, ErrNotYetValid, ErrIssuer, ErrAudience, ErrClaims, ErrNotInitialized,
}

func wrapsExactly(err, want error) bool {
	if !errors.Is(err, want) {
		return false
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			return false
		}
	}
	return true
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func bigOne() *big.Int { return big.NewInt(1) }

func hexPrefix(b []byte) string { return hex.EncodeToString(b)[:8] }
