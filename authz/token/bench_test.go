package token

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// The verify path runs on every RTSP DESCRIBE/PLAY, HLS session start and
// WHEP offer; keys are parsed once at Initialize, never here.
func benchmarkVerify(b *testing.B, m jwt.SigningMethod, key any, kid string) {
	k := keys(b)
	v := newVerifier(b, &Verifier{HS256Secret: testSecret, PublicKeysPEM: []string{k.edPEM, k.ecPEM, k.rsaPEM}, Issuer: "backend", Audience: "camgate"})
	tok := sign(b, m, key, claims(), kid)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	benchmarkVerify(b, jwt.SigningMethodHS256, testSecret, "")
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	k := keys(b)
	benchmarkVerify(b, jwt.SigningMethodEdDSA, k.ed, mustThumbprint(b, k.ed.Public()))
}

func BenchmarkVerifyES256(b *testing.B) {
	k := keys(b)
	benchmarkVerify(b, jwt.SigningMethodES256, k.ec, "")
}

func BenchmarkVerifyRS256(b *testing.B) {
	k := keys(b)
	benchmarkVerify(b, jwt.SigningMethodRS256, k.rsa, "")
}

func BenchmarkVerifyRejectOversized(b *testing.B) {
	v := newVerifier(b, &Verifier{HS256Secret: testSecret})
	tok := string(make([]byte, MaxTokenBytes+1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err == nil {
			b.Fatal("accepted")
		}
	}
}
