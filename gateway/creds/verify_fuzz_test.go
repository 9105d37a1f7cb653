package creds

import (
	"testing"
)

// FuzzVerify feeds arbitrary Basic pairs and Digest answers (what an RTSP
// client controls) to the verifier: nothing panics, and nothing but the
// credential's own password (or its correct Digest answer) verifies.
func FuzzVerify(f *testing.F) {
	s := newService(f, f.TempDir())
	c := mustCreate(f, s, CreateRequest{Subject: "alice"})
	const nonce = "0123456789abcdef0123456789abcdef"
	good := digestFor(f, c.Username, c.Password, DefaultRealm, nonce, "DESCRIBE", "rtsp://h/cam1")
	f.Add(c.Username, c.Password, good.Realm, good.Nonce, good.URI, good.Response, "DESCRIBE")
	f.Add(c.Username, "", "", "", "", "", "")
	f.Add("cgaaaaaaaa", c.Password, DefaultRealm, nonce, "rtsp://h/cam1", good.Response+"0", "PLAY")
	f.Fuzz(func(t *testing.T, user, pass, realm, gotNonce, uri, response, method string) {
		if _, err := s.VerifyBasic(user, pass); err == nil && (user != c.Username || pass != c.Password) {
			t.Fatalf("Basic %q/%q verified", user, pass)
		}
		d := Digest{Username: user, Realm: realm, Nonce: gotNonce, URI: uri, Response: response, Method: method, ExpectedNonce: nonce}
		if _, err := s.VerifyDigest(d); err == nil {
			want := digestResponse(HA1(c.Username, DefaultRealm, c.Password), nonce, method, uri)
			if user != c.Username || realm != DefaultRealm || gotNonce != nonce || response != string(want[:]) {
				t.Fatalf("Digest %+v verified", d)
			}
		}
		_ = LooksLikeUsername(user)
		_ = LooksLikePassword(pass)
	})
}
