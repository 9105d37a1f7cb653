package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func fullVerifier(t *testing.T) *Verifier {
	k := keys(t)
	return newVerifier(t, &Verifier{
		HS256Secret:   testSecret,
		PublicKeysPEM: []string{k.edPEM, k.ecPEM, k.rsaPEM},
		Issuer:        "backend",
		Audience:      "camgate",
	})
}

func TestVerifyValid(t *testing.T) {
	k := keys(t)
	v := fullVerifier(t)
	tests := []struct {
		name string
		tok  string
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, testSecret, claims(), "")},
		{"HS256 with a kid of its own", sign(t, jwt.SigningMethodHS256, testSecret, claims(), "backend-v1")},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, k.ed, claims(), "")},
		{"EdDSA by thumbprint", sign(t, jwt.SigningMethodEdDSA, k.ed, claims(), mustThumbprint(t, k.ed.Public()))},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, claims(), "")},
		{"ES256 by thumbprint", sign(t, jwt.SigningMethodES256, k.ec, claims(), mustThumbprint(t, &k.ec.PublicKey))},
		{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa, claims(), "")},
		{"RS256 by thumbprint", sign(t, jwt.SigningMethodRS256, k.rsa, claims(), mustThumbprint(t, &k.rsa.PublicKey))},
		{"aud as a list", sign(t, jwt.SigningMethodHS256, testSecret, with(claims(), "aud", []string{"other", "camgate"}), "")},
		{"expired within leeway", sign(t, jwt.SigningMethodHS256, testSecret, with(claims(), "exp", testNow.Add(-20*time.Second).Unix()), "")},
		{"nbf within leeway", sign(t, jwt.SigningMethodHS256, testSecret, with(claims(), "nbf", testNow.Add(20*time.Second).Unix()), "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.tok)
			if err != nil {
				t.Fatalf("Verify = %v", err)
			}
			if c.Subject != "alice" || c.ID != "j1" || c.ExpiresAt.IsZero() {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
	c, _ := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims(), ""))
	if !c.ExpiresAt.Equal(testNow.Add(time.Hour)) {
		t.Fatalf("ExpiresAt = %v, want %v", c.ExpiresAt, testNow.Add(time.Hour))
	}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func TestVerifyRejects(t *testing.T) {
	k := keys(t)
	v := fullVerifier(t)
	good := sign(t, jwt.SigningMethodHS256, testSecret, claims(), "")
	parts := strings.Split(good, ".")
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	// HS/RS confusion: an attacker signs HS256 using the RSA public key's
	// PEM, which is public, as the HMAC secret.
	mac := hmac.New(sha256.New, []byte(k.rsaPEM))
	hdr := `{"alg":"HS256","typ":"JWT","kid":"` + mustThumbprint(t, &k.rsa.PublicKey) + `"}`
	payload := `{"sub":"mallory","iss":"backend","aud":"camgate","exp":` + itoa(testNow.Add(time.Hour).Unix()) + `}`
	signing := base64.RawURLEncoding.EncodeToString([]byte(hdr)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	mac.Write([]byte(signing))
	confusedKid := signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	confusedNoKid := jwtHS256WithSecret(t, []byte(k.rsaPEM), payload)

	tamperedPayload := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","iss":"backend","aud":"camgate","exp":`+itoa(testNow.Add(time.Hour).Unix())+`}`)) + "." + parts[2]
	sig := []byte(parts[2])
	sig[3] ^= 'A' ^ 'B'
	if sig[3] == parts[2][3] {
		t.Fatal("signature not modified")
	}
	tamperedSig := parts[0] + "." + parts[1] + "." + string(sig)

	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"empty", "", ErrMissing},
		{"oversized", strings.Repeat("a", MaxTokenBytes+1), ErrTooLarge},
		{"oversized but otherwise valid", sign(t, jwt.SigningMethodHS256, testSecret, with(claims(), "pad", strings.Repeat("x", MaxTokenBytes)), ""), ErrTooLarge},
		{"one segment", "abc", ErrMalformed},
		{"garbage segments", "a.b.c", ErrMalformed},
		{"bad base64 signature", parts[0] + "." + parts[1] + ".!!!", ErrMalformed},
		{"missing exp", sign(t, jwt.SigningMethodHS256, testSecret, with(claims(), "exp", nil), ""), ErrClaims},
		{"missing sub", sign(t, jwt.SigningMethodHS256, testSecret, with(claims(), "sub", nil), ""), ErrClaims},
		{"exp not a number", sign(t, jwt.SigningMethodHS256, testSecret, with(claims(), "exp", "tomorrow"), ""), ErrMalformed},
		{"expired", sign(t, jwt.SigningMethodHS256, testSecret, with(claims(), "exp", testNow.Add(-31*time.Second).Unix()), ""), ErrExpired},
		{"nbf in future", sign(t, jwt.SigningMethodEdDSA, k.ed, with(claims(), "nbf", testNow.Add(time.Minute).Unix()), ""), ErrNotYetValid},
		{"wrong iss", sign(t, jwt.SigningMethodHS256, testSecret, with(claims(), "iss", "evil"), ""), ErrIssuer},
		{"missing iss", sign(t, jwt.SigningMethodHS256, testSecret, with(claims(), "iss", nil), ""), ErrClaims},
		{"wrong aud", sign(t, jwt.SigningMethodES256, k.ec, with(claims(), "aud", "other"), ""), ErrAudience},
		{"missing aud", sign(t, jwt.SigningMethodES256, k.ec, with(claims(), "aud", nil), ""), ErrClaims},
		{"tampered payload", tamperedPayload, ErrSignature},
		{"tampered signature", tamperedSig, ErrSignature},
		{"signature from another key", sign(t, jwt.SigningMethodES256, otherEC, claims(), ""), ErrSignature},
		{"alg none", rawToken(`{"alg":"none","typ":"JWT"}`, `{"sub":"mallory","exp":`+itoa(testNow.Add(time.Hour).Unix())+`}`, nil), ErrAlgorithm},
		{"alg None", rawToken(`{"alg":"None"}`, `{"sub":"mallory","exp":1}`, nil), ErrAlgorithm},
		{"no alg", rawToken(`{"typ":"JWT"}`, `{"sub":"mallory","exp":1}`, []byte("x")), ErrAlgorithm},
		{"HS512 not accepted", sign(t, jwt.SigningMethodHS512, testSecret, claims(), ""), ErrAlgorithm},
		{"PS256 not accepted", sign(t, jwt.SigningMethodPS256, k.rsa, claims(), ""), ErrAlgorithm},
		{"HS256 with RSA public PEM as secret", confusedNoKid, ErrSignature},
		{"HS256 with RSA public PEM as secret, RSA kid", confusedKid, ErrAlgorithm},
		{"RS256 token naming the Ed25519 kid", sign(t, jwt.SigningMethodRS256, k.rsa, claims(), mustThumbprint(t, k.ed.Public())), ErrAlgorithm},
		{"unknown kid", sign(t, jwt.SigningMethodES256, otherEC, claims(), "nope"), ErrUnknownKey},
		{"crit header", signWithHeader(t, "crit", []string{"exp"}), ErrMalformed},
		{"kid not a string", signWithHeader(t, "kid", 7), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.tok)
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", c)
			}
			if !wrapsExactly(err, tc.want) {
				t.Fatalf("Verify = %v, want only %v", err, tc.want)
			}
			if len(tc.tok) > 20 && strings.Contains(err.Error(), tc.tok) {
				t.Fatalf("error message contains the token: %v", err)
			}
		})
	}
}

// TestHSRSConfusionWithRSAOnly: with no HS256 secret there is no HMAC key at
// all, so the forged token cannot even reach a verifier.
func TestHSRSConfusionWithRSAOnly(t *testing.T) {
	k := keys(t)
	v := newVerifier(t, &Verifier{PublicKeysPEM: []string{k.rsaPEM}})
	forged := jwtHS256WithSecret(t, []byte(k.rsaPEM), `{"sub":"mallory","exp":`+itoa(testNow.Add(time.Hour).Unix())+`}`)
	if _, err := v.Verify(forged); !wrapsExactly(err, ErrUnknownKey) {
		t.Fatalf("Verify = %v, want ErrUnknownKey", err)
	}
	rs := sign(t, jwt.SigningMethodRS256, k.rsa, claims(), "")
	if _, err := v.Verify(rs); err != nil {
		t.Fatalf("the real RS256 token: %v", err)
	}
}

func jwtHS256WithSecret(t *testing.T, secret []byte, payload string) string {
	t.Helper()
	signing := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func signWithHeader(t *testing.T, name string, value any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
	tok.Header[name] = value
	s, err := tok.SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestVerifyBeforeInitialize(t *testing.T) {
	var v Verifier
	if _, err := v.Verify("a.b.c"); !wrapsExactly(err, ErrNotInitialized) {
		t.Fatalf("Verify = %v, want ErrNotInitialized", err)
	}
}

func TestNoKeysRejectsEverything(t *testing.T) {
	v := newVerifier(t, &Verifier{})
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims(), "")); !wrapsExactly(err, ErrUnknownKey) {
		t.Fatalf("Verify = %v, want ErrUnknownKey", err)
	}
}

func TestInitializeErrors(t *testing.T) {
	k := keys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPEM, _ := pemPublic(&small.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384PEM, _ := pemPublic(&p384.PublicKey)
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.ed)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	tests := []struct {
		name string
		v    *Verifier
		want string
	}{
		{"short secret", &Verifier{HS256Secret: []byte("short")}, "hs256_secret: must be at least 32 bytes, got 5"},
		{"not PEM", &Verifier{PublicKeysPEM: []string{k.edPEM, "/etc/key.pem"}}, "public_keys[1]: no PEM block"},
		{"two blocks", &Verifier{PublicKeysPEM: []string{k.edPEM + k.ecPEM}}, "public_keys[0]: more than one PEM block"},
		{"private key", &Verifier{PublicKeysPEM: []string{privPEM}}, "public_keys[0]: \"PRIVATE KEY\" is a private key"},
		{"small RSA", &Verifier{PublicKeysPEM: []string{k.rsaPEM, smallPEM}}, "public_keys[1]: RSA key of 1024 bits"},
		{"P-384", &Verifier{PublicKeysPEM: []string{p384PEM}}, "public_keys[0]: ECDSA curve P-384 is not supported"},
		{"corrupt DER", &Verifier{PublicKeysPEM: []string{"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}}, "public_keys[0]: PUBLIC KEY:"},
		{"jwks plain http", &Verifier{JWKSURL: "http://idp.example.com/jwks"}, "jwks_url must use https"},
		{"jwks relative", &Verifier{JWKSURL: "/jwks"}, "jwks_url must be an absolute"},
		{"negative leeway", &Verifier{Leeway: -time.Second}, "leeway -1s is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.v.Initialize()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Initialize = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCertificateAndPKCS1Keys(t *testing.T) {
	k := keys(t)
	tmpl := &x509.Certificate{SerialNumber: bigOne(), NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.ec.PublicKey, k.ec)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}))
	v := newVerifier(t, &Verifier{PublicKeysPEM: []string{certPEM, pkcs1}})
	for _, tok := range []string{
		sign(t, jwt.SigningMethodES256, k.ec, claims(), mustThumbprint(t, &k.ec.PublicKey)),
		sign(t, jwt.SigningMethodRS256, k.rsa, claims(), ""),
	} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("Verify = %v", err)
		}
	}
}

func TestThumbprintVectors(t *testing.T) {
	// RFC 8037 A.3 (Ed25519) and RFC 7638 §3.1 (RSA).
	ed, err := parseJWK(jwk{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustThumbprint(t, ed.pub); got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Errorf("Ed25519 thumbprint = %s", got)
	}
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	rk, err := parseJWK(jwk{Kty: "RSA", N: n, E: "AQAB", Alg: "RS256", Kid: "2011-04-29"})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustThumbprint(t, rk.pub); got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Errorf("RSA thumbprint = %s", got)
	}
	if rk.kid != "2011-04-29" || rk.alg != algRS256 {
		t.Errorf("RSA JWK kid/alg = %q/%q", rk.kid, rk.alg)
	}
}

func TestFingerprint(t *testing.T) {
	a, b := Fingerprint("token-a"), Fingerprint("token-b")
	sum := sha256.Sum256([]byte("token-a"))
	if len(a) != 8 || a != strings.ToLower(a) || a == b || a != hexPrefix(sum[:]) || Fingerprint("token-a") != a {
		t.Fatalf("Fingerprint = %q, %q", a, b)
	}
}
