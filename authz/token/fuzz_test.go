package token

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary strings to Verify. It must not panic, every
// error must wrap exactly one sentinel, and anything accepted must carry a
// subject and an expiry after now-leeway (the fuzzer cannot forge a
// signature, so acceptance means it started from a valid seed).
func FuzzVerify(f *testing.F) {
	k := keys(f)
	c := claims()
	c["exp"] = testNow.Add(time.Hour).Unix()
	f.Add(sign(f, jwt.SigningMethodHS256, testSecret, c, ""))
	f.Add(sign(f, jwt.SigningMethodEdDSA, k.ed, c, ""))
	f.Add(sign(f, jwt.SigningMethodHS256, testSecret, c, "kid-1"))
	f.Add(rawToken(`{"alg":"none"}`, `{"sub":"x","exp":9999999999}`, nil))
	f.Add("a.b.c")
	f.Add("")
	v := newVerifier(f, &Verifier{HS256Secret: testSecret, PublicKeysPEM: []string{k.edPEM}, Issuer: "backend", Audience: "camgate"})
	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := v.Verify(raw)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("Verify(%q) = %v wraps %d sentinels, want 1", raw, err, n)
			}
			return
		}
		if claims.Subject == "" || claims.ExpiresAt.Before(testNow.Add(-v.Leeway)) {
			t.Fatalf("Verify(%q) accepted %+v", raw, claims)
		}
	})
}
