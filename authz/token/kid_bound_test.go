package token

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// jwksOf serves n fresh Ed25519 keys with kids "k0".."k{n-1}" and returns a
// verifier on it and the private keys.
func jwksOf(t testing.TB, n int) (*Verifier, []ed25519.PrivateKey) {
	srv := newJWKSServer(t)
	privs := make([]ed25519.PrivateKey, n)
	entries := make([]map[string]string, n)
	for i := range privs {
		privs[i] = newEd(t)
		entries[i] = edJWK(fmt.Sprintf("k%d", i), privs[i].Public().(ed25519.PublicKey))
	}
	srv.set(http.StatusOK, entries...)
	v := newVerifier(t, &Verifier{JWKSURL: srv.URL})
	if got := v.keys.Load().algCount[algEdDSA]; got != n {
		t.Fatalf("verifier holds %d EdDSA keys, want %d", got, n)
	}
	return v, privs
}

// TestKidlessTokensTryFewKeys: a token that selects no key by kid is tried
// against the keys of its alg only while there are at most
// MaxKeysWithoutKid of them; a large JWKS needs a kid.
func TestKidlessTokensTryFewKeys(t *testing.T) {
	few, fewKeys := jwksOf(t, MaxKeysWithoutKid)
	many, manyKeys := jwksOf(t, MaxKeysWithoutKid+1)
	last := func(ks []ed25519.PrivateKey) ed25519.PrivateKey { return ks[len(ks)-1] }
	tests := []struct {
		name    string
		v       *Verifier
		tok     string
		want    error // nil: accepted
		message string
	}{
		{"no kid, 4 keys", few, sign(t, jwt.SigningMethodEdDSA, last(fewKeys), claims(), ""), nil, ""},
		{"unknown kid, 4 keys", few, sign(t, jwt.SigningMethodEdDSA, last(fewKeys), claims(), "issuer-own-kid"), nil, ""},
		{"no kid, 5 keys", many, sign(t, jwt.SigningMethodEdDSA, last(manyKeys), claims(), ""), ErrUnknownKey,
			"token has no kid and the key set has 5 keys of alg EdDSA"},
		{"unknown kid, 5 keys", many, sign(t, jwt.SigningMethodEdDSA, last(manyKeys), claims(), "nope"), ErrUnknownKey,
			`kid "nope" is not in the key set, which has 5 keys of alg EdDSA`},
		{"its kid, 5 keys", many, sign(t, jwt.SigningMethodEdDSA, last(manyKeys), claims(), "k4"), nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.v.Verify(tc.tok)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("Verify = %v, want accepted", err)
			case tc.want == nil && c.Subject != "alice":
				t.Fatalf("claims = %+v", c)
			case tc.want != nil && (!wrapsExactly(err, tc.want) || !strings.Contains(err.Error(), tc.message)):
				t.Fatalf("Verify = %v, want %v saying %q", err, tc.want, tc.message)
			}
		})
	}
}

// BenchmarkVerifyBogusToken2400Keys: what an attacker's token costs against
// a 2,400-key JWKS, without a kid and with a kid the set does not have.
// Unbounded, every key was tried (one Ed25519 verification each).
func BenchmarkVerifyBogusToken2400Keys(b *testing.B) {
	v, _ := jwksOf(b, 2400)
	v.JWKSMinRefetch = 1 << 62 // the unknown kid does not refetch during the run
	mallory := newEd(b)
	for _, kid := range []string{"", "not-in-the-set"} {
		name := "no-kid"
		if kid != "" {
			name = "unknown-kid"
		}
		b.Run(name, func(b *testing.B) {
			tok := sign(b, jwt.SigningMethodEdDSA, mallory, claims(), kid)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err == nil {
					b.Fatal("accepted a bogus token")
				}
			}
		})
	}
}
