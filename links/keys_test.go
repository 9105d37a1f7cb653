package links_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/camgate/camgate/links"
)

type jwkSet struct {
	Keys []struct {
		Kty, Crv, X, Kid, Alg, Use string
	}
}

func parseJWKS(t *testing.T, b []byte) jwkSet {
	t.Helper()
	var s jwkSet
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("JWKS %s: %v", b, err)
	}
	return s
}

func kidsOf(s jwkSet) []string {
	var out []string
	for _, k := range s.Keys {
		out = append(out, k.Kid)
	}
	slices.Sort(out)
	return out
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Header["kid"].(string)
}

func TestKeyRotationWithOverlap(t *testing.T) {
	e := newEnv(t)
	k1 := e.svc.KeyIDs()[0]
	old := e.create(t, t0, t0.Add(time.Hour))
	k2, err := e.svc.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if k2 == k1 || e.svc.KeyIDs()[0] != k2 {
		t.Fatalf("after rotation keys %v, want %s current", e.svc.KeyIDs(), k2)
	}
	if _, err := e.svc.Verify(old.Token); err != nil {
		t.Fatalf("old link after rotation: %v", err)
	}
	fresh := e.create(t, t0, t0.Add(3*time.Hour))
	if kidOf(t, fresh.Token) != k2 || kidOf(t, old.Token) != k1 {
		t.Fatalf("kids: fresh %s old %s; want %s and %s", kidOf(t, fresh.Token), kidOf(t, old.Token), k2, k1)
	}
	want := []string{k1, k2}
	slices.Sort(want)
	if got := kidsOf(parseJWKS(t, e.svc.JWKS())); !slices.Equal(got, want) {
		t.Fatalf("JWKS kids %v, want %v", got, want)
	}
	// Before the old link expired, a sweep keeps k1.
	e.clock.Set(t0.Add(59 * time.Minute))
	if err := e.svc.Sweep(); err != nil {
		t.Fatal(err)
	}
	if len(e.svc.KeyIDs()) != 2 {
		t.Fatalf("k1 dropped while its link is live: %v", e.svc.KeyIDs())
	}
	// Once every link k1 signed has expired, it goes.
	e.clock.Set(t0.Add(time.Hour + time.Minute))
	if err := e.svc.Sweep(); err != nil {
		t.Fatal(err)
	}
	if got := kidsOf(parseJWKS(t, e.svc.JWKS())); !slices.Equal(got, []string{k2}) {
		t.Fatalf("JWKS after k1 retired: %v, want [%s]", got, k2)
	}
	if _, err := e.svc.Verify(old.Token); !errors.Is(err, links.ErrUnknownKey) {
		t.Fatalf("token of a dropped key: %v, want ErrUnknownKey", err)
	}
	if _, err := e.svc.Verify(fresh.Token); err != nil {
		t.Fatalf("fresh link: %v", err)
	}
	// The current key is never dropped, even with no live link.
	e.clock.Set(t0.Add(10 * time.Hour))
	if err := e.svc.Sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.svc.KeyIDs(); len(got) != 1 || got[0] != k2 {
		t.Fatalf("keys %v, want the current key kept", got)
	}
}

// Two nodes on one store: a key rotated on one is picked up by the other on
// the first token that names it.
func TestRotationSeenByAnotherNode(t *testing.T) {
	st, err := links.OpenBoltStore(filepath.Join(t.TempDir(), "links.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := newEnv(t, func(s *links.Service) { s.Store = st })
	b := newEnv(t, func(s *links.Service) { s.Store = st })
	if a.svc.KeyIDs()[0] != b.svc.KeyIDs()[0] {
		t.Fatalf("nodes disagree on the first key: %v %v", a.svc.KeyIDs(), b.svc.KeyIDs())
	}
	if _, err := a.svc.RotateKey(); err != nil {
		t.Fatal(err)
	}
	c := a.create(t, t0, t0.Add(time.Hour))
	claims, err := b.svc.Verify(c.Token)
	if err != nil {
		t.Fatalf("node b verifying a token of node a's new key: %v", err)
	}
	if d := b.svc.Decide(claims.LinkID, "cam1", "live", t0, nil); !d.Allowed {
		t.Fatalf("node b deciding node a's link: %+v", d)
	}
	// Node a disables; node b learns through Invalidate (the change feed).
	if _, err := a.svc.Disable(c.ID); err != nil {
		t.Fatal(err)
	}
	b.svc.Invalidate(c.ID)
	if d := b.svc.Decide(claims.LinkID, "cam1", "live", t0, nil); d.Reason != links.ReasonDisabled {
		t.Fatalf("node b after invalidation: %+v", d)
	}
}

// Unknown kids reload the key set at most once per KeyRefreshMin.
func TestUnknownKidRefreshIsRateLimited(t *testing.T) {
	st := &countingStore{}
	inner, err := links.OpenBoltStore(filepath.Join(t.TempDir(), "links.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	st.Store = inner
	e := newEnv(t, func(s *links.Service) { s.Store = st; s.KeyRefreshMin = time.Minute })
	_, attacker, _ := ed25519.GenerateKey(nil)
	before := st.keyLists.Load()
	for i := range 100 {
		tok := forge(t, jwt.SigningMethodEdDSA, attacker, "kid-"+string(rune('a'+i%26)), jwt.MapClaims{"exp": t0.Add(time.Hour).Unix()})
		if _, err := e.svc.Verify(tok); !errors.Is(err, links.ErrUnknownKey) {
			t.Fatalf("forged kid: %v", err)
		}
	}
	if n := st.keyLists.Load() - before; n > 1 {
		t.Fatalf("100 unknown kids within a minute reloaded the keys %d times, want at most 1", n)
	}
}

func TestJWKSVerifiesTokens(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, t0, t0.Add(time.Hour))
	set := parseJWKS(t, e.svc.JWKS())
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS %+v", set)
	}
	k := set.Keys[0]
	if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Use != "sig" || k.Kid == "" {
		t.Fatalf("JWK %+v", k)
	}
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		t.Fatalf("x: %v", err)
	}
	// An independent verifier with nothing but the JWKS accepts the token.
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience(links.Audience),
		jwt.WithTimeFunc(func() time.Time { return t0 })).
		Parse(c.Token, func(*jwt.Token) (any, error) { return ed25519.PublicKey(x), nil })
	if err != nil {
		t.Fatalf("verifying with the published key: %v", err)
	}
}
