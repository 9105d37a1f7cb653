package gateway

import (
	"context"
	"testing"
)

// BenchmarkViewerTokenCached is the enforcement point's token check for a
// viewer seen before (RTSP SETUP/PLAY after DESCRIBE, each archive request,
// API calls): the failure limiter's check plus a cache hit.
func BenchmarkViewerTokenCached(b *testing.B) {
	n := startNode(b, b.TempDir())
	tok := viewerToken(b, "alice")
	ctx := context.Background()
	if _, err := n.g.access.Authenticate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := n.g.access.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
