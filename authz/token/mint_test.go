package token

import (
	"strings"
	"testing"
	"time"
)

func TestMintHS256(t *testing.T) {
	v := newVerifier(t, &Verifier{HS256Secret: testSecret})
	tok, err := MintHS256(testSecret, "alice", time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify(minted) = %v", err)
	}
	if c.Subject != "alice" || !c.ExpiresAt.Equal(testNow.Add(time.Hour)) || len(c.ID) < 16 {
		t.Fatalf("claims = %+v", c)
	}
	again, _ := MintHS256(testSecret, "alice", time.Hour, testNow)
	if c2, _ := v.Verify(again); c2.ID == c.ID {
		t.Fatal("two minted tokens share a jti")
	}

	expired, _ := MintHS256(testSecret, "alice", time.Minute, testNow.Add(-2*time.Minute))
	if _, err := v.Verify(expired); !wrapsExactly(err, ErrExpired) {
		t.Fatalf("Verify(expired) = %v, want ErrExpired", err)
	}
}

func TestMintErrors(t *testing.T) {
	for _, tc := range []struct {
		secret []byte
		sub    string
		ttl    time.Duration
		want   string
	}{
		{[]byte("short"), "alice", time.Hour, "at least 32 bytes"},
		{nil, "alice", time.Hour, "at least 32 bytes"},
		{testSecret, "", time.Hour, "sub is empty"},
		{testSecret, "alice", 0, "ttl 0s is not positive"},
	} {
		if _, err := MintHS256(tc.secret, tc.sub, tc.ttl, testNow); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("MintHS256(%q, %q, %v) = %v, want %q", tc.secret, tc.sub, tc.ttl, err, tc.want)
		}
	}
}

// TestVerifierMint: `camgate token` mints with the configured issuer and
// audience, so the token passes the same verifier's checks.
func TestVerifierMint(t *testing.T) {
	v := newVerifier(t, &Verifier{HS256Secret: testSecret, Issuer: "backend", Audience: "camgate"})
	tok, err := v.Mint("bob", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.Verify(tok); err != nil || c.Subject != "bob" {
		t.Fatalf("Verify(v.Mint) = %+v, %v", c, err)
	}
	plain, _ := MintHS256(testSecret, "bob", time.Hour, testNow)
	if _, err := v.Verify(plain); !wrapsExactly(err, ErrClaims) {
		t.Fatalf("token without iss/aud = %v, want ErrClaims", err)
	}
}
