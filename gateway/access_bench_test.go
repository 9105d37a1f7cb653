package gateway

import (
	"context"
	"testing"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/access"
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

// BenchmarkSeesEvent is the event feed's per-event, per-stream decision
// (`notices` on the device, from the cached decision): what each open
// stream pays for each event it is offered.
func BenchmarkSeesEvent(b *testing.B) {
	n := startNode(b, b.TempDir())
	ctx := context.Background()
	if _, _, err := n.g.authz.PutSubject(ctx, authz.Caller{Root: true}, authz.Subject{ID: "alice", Kind: authz.SubjectUser}); err != nil {
		b.Fatal(err)
	}
	if _, _, err := n.g.authz.PutGrant(ctx, authz.Caller{Root: true}, authz.Grant{ID: "g", Subject: "alice", Device: "cam1", Actions: []string{"notices"}, Condition: "always"}); err != nil {
		b.Fatal(err)
	}
	p := access.Principal{Kind: access.KindSubject, ID: "alice"}
	if !n.g.access.SeesEvent(p, "cam1", "") {
		b.Fatal("alice should see cam1's events")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !n.g.access.SeesEvent(p, "cam1", "") {
			b.Fatal("refused")
		}
	}
}
