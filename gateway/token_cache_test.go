package gateway

import (
	"testing"
	"time"

	"github.com/camgate/camgate/authz/token"
)

func TestTokenCacheForgetsExpiredTokens(t *testing.T) {
	c := newTokenCache(2)
	now := time.Unix(1000, 0)
	c.put("a", token.Claims{Subject: "alice", ExpiresAt: now.Add(time.Minute)})
	if cl, ok := c.get("a", now); !ok || cl.Subject != "alice" {
		t.Fatalf("fresh entry: %+v %v", cl, ok)
	}
	if _, ok := c.get("a", now.Add(time.Minute)); ok {
		t.Fatal("an expired token was served from the cache")
	}
	c.put("b", token.Claims{ExpiresAt: now.Add(time.Hour)})
	c.put("c", token.Claims{ExpiresAt: now.Add(time.Hour)})
	if len(c.entries) != 2 {
		t.Fatalf("cache grew past its bound: %d entries", len(c.entries))
	}
}

// BenchmarkViewerTokenCached is the admission's token check for a viewer
// seen before (RTSP SETUP/PLAY after DESCRIBE, each archive segment).
func BenchmarkViewerTokenCached(b *testing.B) {
	n := startNode(b, b.TempDir())
	tok := viewerToken(b, "alice")
	if _, err := n.g.access.subjectOf(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := n.g.access.subjectOf(tok); err != nil {
			b.Fatal(err)
		}
	}
}
