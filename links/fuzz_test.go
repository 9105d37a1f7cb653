package links_test

import (
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/links"
)

// FuzzVerify: no input panics, and the only string that verifies is the
// token camgate minted (strict base64 and Ed25519 leave no malleability).
func FuzzVerify(f *testing.F) {
	e := newEnv(f)
	c := e.create(f, t0, t0.Add(time.Hour))
	parts := strings.Split(c.Token, ".")
	f.Add(c.Token)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add(c.Token + "=")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	f.Add("...")
	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := e.svc.Verify(raw)
		if err == nil && raw != c.Token {
			t.Fatalf("accepted a string that is not the minted token: %q → %+v", raw, claims)
		}
		if err == nil && claims.LinkID != c.ID {
			t.Fatalf("claims %+v", claims)
		}
		_ = links.IsLinkToken(raw)
	})
}
