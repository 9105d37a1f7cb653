package access

import (
	"testing"
	"time"
)

func TestTokenCacheForgetsExpiredTokens(t *testing.T) {
	c := newTokenCache(2)
	now := time.Unix(1000, 0)
	c.put("a", Principal{Kind: KindSubject, ID: "alice"}, now.Add(time.Minute))
	if p, ok := c.get("a", now); !ok || p.ID != "alice" {
		t.Fatalf("fresh entry: %+v %v", p, ok)
	}
	if _, ok := c.get("a", now.Add(time.Minute)); ok {
		t.Fatal("an expired token was served from the cache")
	}
	c.put("b", Principal{Kind: KindLink, ID: "l1"}, now.Add(time.Hour))
	c.put("c", Principal{Kind: KindSubject, ID: "bob"}, now.Add(time.Hour))
	if len(c.entries) != 2 {
		t.Fatalf("cache grew past its bound: %d entries", len(c.entries))
	}
}
