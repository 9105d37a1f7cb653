package creds

import (
	"errors"
	"testing"

	"github.com/camgate/camgate/internal/strictjson"
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

// FuzzCreateBody feeds arbitrary bodies to POST /stream-credentials'
// parsing: nothing panics, every refusal names a field, and an accepted
// body names exactly one owner with a printable, bounded label.
func FuzzCreateBody(f *testing.F) {
	s := newService(f, f.TempDir())
	for _, b := range []string{`{"subject":"alice"}`, `{"link":"l1","label":"NVR","not_after":"2099-01-01T00:00:00Z"}`,
		`{"subject":"a","subject":"b"}`, `{"subject":"a","link":"b"}`, `{"label":"\u0000"}`, `[]`, ``} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := s.parseCreate(body)
		if err != nil {
			var fe *strictjson.Error
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("refusal %v names no field", err)
			}
			return
		}
		if (req.Subject == "") == (req.Link == "") || len([]rune(req.Label)) > MaxLabel {
			t.Fatalf("accepted %+v", req)
		}
	})
}
