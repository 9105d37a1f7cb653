package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwksServer serves whatever key set the test puts in it and counts fetches.
type jwksServer struct {
	*httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	body   []byte
	status int
}

func newJWKSServer(t testing.TB) *jwksServer {
	s := &jwksServer{status: http.StatusOK, body: []byte(`{"keys":[]}`)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, keys ...map[string]string) {
	if keys == nil {
		keys = []map[string]string{}
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	s.mu.Lock()
	s.status, s.body = status, b
	s.mu.Unlock()
}

func edJWK(kid string, pub ed25519.PublicKey) map[string]string {
	return map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": base64.RawURLEncoding.EncodeToString(pub), "use": "sig", "alg": "EdDSA"}
}

func newEd(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestJWKSUnknownKidRefetchIsRateLimited(t *testing.T) {
	a, b, c := newEd(t), newEd(t), newEd(t)
	srv := newJWKSServer(t)
	srv.set(http.StatusOK, edJWK("a", a.Public().(ed25519.PublicKey)))
	clock := &fakeClock{now: testNow}
	v := newVerifier(t, &Verifier{JWKSURL: srv.URL + "/jwks.json", Now: clock.Now, JWKSMinRefetch: time.Minute})
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches after Initialize = %d, want 1", got)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodEdDSA, a, claims(), "a")); err != nil {
		t.Fatalf("known kid: %v", err)
	}

	// The issuer rotates in key b. Right after Initialize the rate limit
	// holds: the unknown kid is refused without a fetch.
	srv.set(http.StatusOK, edJWK("a", a.Public().(ed25519.PublicKey)), edJWK("b", b.Public().(ed25519.PublicKey)))
	tokB := sign(t, jwt.SigningMethodEdDSA, b, claims(), "b")
	if _, err := v.Verify(tokB); !wrapsExactly(err, ErrUnknownKey) {
		t.Fatalf("kid b within the rate limit: %v, want ErrUnknownKey", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches = %d, want 1 (rate limited)", got)
	}

	// A minute later, many concurrent viewers with kid b cause one fetch.
	clock.Advance(time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := v.Verify(tokB)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("kid b after refetch: %v", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2 (one refetch for all concurrent callers)", got)
	}

	// Another unknown kid right away: no fetch, refused.
	srv.set(http.StatusOK, edJWK("c", c.Public().(ed25519.PublicKey)))
	for range 3 {
		if _, err := v.Verify(sign(t, jwt.SigningMethodEdDSA, c, claims(), "c")); !wrapsExactly(err, ErrUnknownKey) {
			t.Fatalf("kid c: %v, want ErrUnknownKey", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2 (rate limit holds)", got)
	}
}

func TestJWKSUnavailableAtStartup(t *testing.T) {
	a := newEd(t)
	srv := newJWKSServer(t)
	srv.set(http.StatusServiceUnavailable)
	clock := &fakeClock{now: testNow}
	v := newVerifier(t, &Verifier{JWKSURL: srv.URL, Now: clock.Now})
	tok := sign(t, jwt.SigningMethodEdDSA, a, claims(), "a")
	if _, err := v.Verify(tok); !wrapsExactly(err, ErrUnknownKey) {
		t.Fatalf("Verify with JWKS down = %v, want ErrUnknownKey", err)
	}
	srv.set(http.StatusOK, edJWK("a", a.Public().(ed25519.PublicKey)))
	clock.Advance(time.Minute)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("Verify once the JWKS is back = %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2", got)
	}
}

// TestJWKSRefreshDropsRemovedKey: a key the issuer withdraws stops working
// once the cached set is older than JWKSMaxAge.
func TestJWKSRefreshDropsRemovedKey(t *testing.T) {
	a := newEd(t)
	srv := newJWKSServer(t)
	srv.set(http.StatusOK, edJWK("a", a.Public().(ed25519.PublicKey)))
	clock := &fakeClock{now: testNow}
	v := newVerifier(t, &Verifier{JWKSURL: srv.URL, Now: clock.Now, JWKSMaxAge: 10 * time.Minute})
	tok := sign(t, jwt.SigningMethodEdDSA, a, with(claims(), "exp", testNow.Add(24*time.Hour).Unix()), "a")
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	srv.set(http.StatusOK) // withdrawn
	clock.Advance(11 * time.Minute)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("the stale set is still used while it refreshes: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(tok)
		if wrapsExactly(err, ErrUnknownKey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("withdrawn key still accepted after the refresh (err %v, fetches %d)", err, srv.hits.Load())
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2", got)
	}
}

func TestJWKSSkipsUnusableEntries(t *testing.T) {
	k := keys(t)
	a := newEd(t)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pt, _ := k.ec.PublicKey.Bytes()
	ecEntry := map[string]string{"kty": "EC", "crv": "P-256", "kid": "ec", "x": b64(pt[1:33]), "y": b64(pt[33:])}
	pt384, _ := ec384.PublicKey.Bytes()
	srv := newJWKSServer(t)
	srv.set(http.StatusOK,
		map[string]string{"kty": "RSA", "kid": "ps", "alg": "PS256", "n": b64(k.rsa.N.Bytes()), "e": "AQAB"},
		map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": b64(a.Public().(ed25519.PublicKey))},
		map[string]string{"kty": "EC", "crv": "P-384", "kid": "p384", "x": b64(pt384[1:49]), "y": b64(pt384[49:])},
		map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "priv", "x": b64(a.Public().(ed25519.PublicKey)), "d": b64(a.Seed())},
		map[string]string{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		ecEntry,
		map[string]string{"kty": "RSA", "kid": "rs", "n": b64(k.rsa.N.Bytes()), "e": "AQAB"},
	)
	v := newVerifier(t, &Verifier{JWKSURL: srv.URL})
	for _, tc := range []struct {
		tok  string
		want error
	}{
		{sign(t, jwt.SigningMethodES256, k.ec, claims(), "ec"), nil},
		{sign(t, jwt.SigningMethodRS256, k.rsa, claims(), "rs"), nil},
		{sign(t, jwt.SigningMethodEdDSA, a, claims(), "enc"), ErrUnknownKey},
		{sign(t, jwt.SigningMethodEdDSA, a, claims(), "priv"), ErrUnknownKey},
		{sign(t, jwt.SigningMethodRS256, k.rsa, claims(), "ps"), nil}, // unknown kid, but the same key is listed as "rs"
		{sign(t, jwt.SigningMethodHS256, []byte("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"), claims(), "hmac"), ErrUnknownKey},
	} {
		_, err := v.Verify(tc.tok)
		if tc.want == nil && err != nil || tc.want != nil && !wrapsExactly(err, tc.want) {
			t.Errorf("Verify = %v, want %v", err, tc.want)
		}
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestJWKSFetchTimeout: a hanging JWKS server delays startup by at most
// JWKSTimeout, and Close does not wait on it.
func TestJWKSFetchTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	v := newVerifier(t, &Verifier{JWKSURL: srv.URL, JWKSTimeout: 200 * time.Millisecond})
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Initialize took %v with a 200ms JWKS timeout", d)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims(), "x")); !wrapsExactly(err, ErrUnknownKey) {
		t.Fatalf("Verify = %v, want ErrUnknownKey", err)
	}
}

func TestParseJWKSRejectsGarbage(t *testing.T) {
	for _, body := range []string{``, `[]`, `{"keys":{}}`, `{}`, `{"keys":[1]}`} {
		if _, _, err := parseJWKS([]byte(body)); err == nil {
			t.Errorf("parseJWKS(%q) accepted it", body)
		}
	}
}
