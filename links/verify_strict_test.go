package links_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/camgate/camgate/links"
)

// TestVerifyRefusesAmbiguousJSON: even signed with camgate's own key, a link
// token whose payload has duplicate members or a quoted NumericDate is
// refused (the same structural rule as viewer tokens).
func TestVerifyRefusesAmbiguousJSON(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, t0, t0.Add(time.Hour))
	ks, err := e.svc.Store.ListKeys(context.Background())
	if err != nil || len(ks) == 0 {
		t.Fatalf("ListKeys = %v, %v", ks, err)
	}
	k := ks[len(ks)-1]
	sign := func(payload string) string {
		b := base64.RawURLEncoding.EncodeToString
		signing := b([]byte(`{"alg":"EdDSA","kid":"`+k.KID+`","typ":"JWT"}`)) + "." + b([]byte(payload))
		return signing + "." + b(ed25519.Sign(ed25519.PrivateKey(k.PrivateKey), []byte(signing)))
	}
	unix := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
	claims := `"iss":"camgate","sub":"link:` + c.ID + `","aud":["camgate-link"],"jti":"` + c.ID + `","nbf":` + unix(t0) + `,"iat":` + unix(t0)
	tests := []struct {
		name, payload string
		ok            bool
	}{
		{"plain", `{` + claims + `,"exp":` + unix(t0.Add(time.Hour)) + `,"cam":"cam1"}`, true},
		{"exp as a string", `{` + claims + `,"exp":"9999999999","cam":"cam1"}`, false},
		{"duplicate cam", `{` + claims + `,"exp":` + unix(t0.Add(time.Hour)) + `,"cam":"cam1","cam":"cam2"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Verify(sign(tc.payload))
			if tc.ok && err != nil {
				t.Fatalf("Verify = %v, want accepted", err)
			}
			if !tc.ok && !errors.Is(err, links.ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
}
