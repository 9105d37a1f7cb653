package creds

import (
	"testing"
)

// BenchmarkVerifyBasic is a repeat Basic check (RTSP DESCRIBE, SETUP, PLAY
// of a viewer seen before): a cache hit and one salted SHA-256.
func BenchmarkVerifyBasic(b *testing.B) {
	s := newService(b, b.TempDir())
	c := mustCreate(b, s, CreateRequest{Subject: "alice"})
	if _, err := s.VerifyBasic(c.Username, c.Password); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.VerifyBasic(c.Username, c.Password); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDigest is a repeat Digest check: a cache hit (HA1 opened
// once, when the credential was loaded) and two MD5s.
func BenchmarkVerifyDigest(b *testing.B) {
	s := newService(b, b.TempDir())
	c := mustCreate(b, s, CreateRequest{Subject: "alice"})
	d := digestFor(b, c.Username, c.Password, DefaultRealm, "0123456789abcdef0123456789abcdef", "DESCRIBE", "rtsp://127.0.0.1:8554/cam1")
	if _, err := s.VerifyDigest(d); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.VerifyDigest(d); err != nil {
			b.Fatal(err)
		}
	}
}
