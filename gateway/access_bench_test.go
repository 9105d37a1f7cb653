package gateway

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"testing"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/creds"
	"github.com/camgate/camgate/gateway/session"
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

// BenchmarkStreamCredentialAdmit is an RTSP DESCRIBE's admission of a viewer
// seen before, by credential kind: the failure limiter, the credential check
// from the in-process cache (no store read), the cached decision and the
// session limits. token is the same admission with a viewer token, for
// comparison.
func BenchmarkStreamCredentialAdmit(b *testing.B) {
	n := startNode(b, b.TempDir())
	root := authz.Caller{Root: true}
	mustHandle(b, n, root, "PUT", []string{"subjects", "alice"}, `{"kind":"user"}`)
	mustHandle(b, n, root, "PUT", []string{"grants", "g-alice"}, `{"subject":"alice","device":"cam1","actions":["live","sound"]}`)
	c, err := n.g.StreamCredentials().Create(context.Background(), creds.CreateRequest{Subject: "alice"}, "root")
	if err != nil {
		b.Fatal(err)
	}
	const nonce = "0123456789abcdef0123456789abcdef"
	uri := "rtsp://127.0.0.1:8554/cam1"
	ha2 := md5.Sum([]byte("DESCRIBE:" + uri))
	resp := md5.Sum([]byte(creds.HA1(c.Username, creds.DefaultRealm, c.Password) + ":" + nonce + ":" + hex.EncodeToString(ha2[:])))
	d := creds.Digest{Username: c.Username, Realm: creds.DefaultRealm, Nonce: nonce, URI: uri,
		Response: hex.EncodeToString(resp[:]), Method: "DESCRIBE", ExpectedNonce: nonce}
	tok := viewerToken(b, "alice")
	ctx := context.Background()
	for name, admit := range map[string]func() (session.Ticket, error){
		"basic":  func() (session.Ticket, error) { return n.g.access.AdmitBasic(ctx, c.Username, c.Password, "cam1") },
		"digest": func() (session.Ticket, error) { return n.g.access.AdmitDigest(ctx, d, "cam1") },
		"token":  func() (session.Ticket, error) { return n.g.access.Admit(ctx, tok, "cam1") },
	} {
		b.Run(name, func(b *testing.B) {
			if t, err := admit(); err != nil || t.Subject != "alice" {
				b.Fatal(t, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := admit(); err != nil {
					b.Fatal(err)
				}
			}
		})
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
