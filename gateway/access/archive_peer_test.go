package access

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/session"
)

func TestArchivePeerTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &Service{RelaySecret: []byte(strings.Repeat("k", 32)), Now: func() time.Time { return now }}
	const seg = "2026-11-22_10-00-00-000000"
	tok := s.ArchivePeerToken("node-a", "node-b", "cam.1", seg)
	from, err := s.verifyArchivePeer(tok, "node-b", "cam.1", seg)
	if err != nil || from != "node-a" {
		t.Fatalf("verify: %q %v", from, err)
	}
	other := &Service{RelaySecret: []byte(strings.Repeat("x", 32)), Now: s.Now}
	none := &Service{Now: s.Now}
	if none.ArchivePeerToken("a", "b", "cam1", seg) != "" {
		t.Fatal("a node without a secret mints node tokens")
	}
	i := strings.LastIndex(tok, peerSep)
	relay := s.RelayToken("node-a", "10.0.0.2", "cam.1")
	for name, c := range map[string]struct{ raw, self, camera, segment string }{
		"another holder":              {tok, "node-c", "cam.1", seg},
		"another camera":              {tok, "node-b", "cam2", seg},
		"another segment":             {tok, "node-b", "cam.1", "2026-11-22_10-00-10-000000"},
		"camera swapped, same MAC":    {strings.Replace(tok, "~cam.1~", "~cam2~", 1), "node-b", "cam2", seg},
		"segment swapped, same MAC":   {strings.Replace(tok, seg, "2026-11-22_10-00-10-000000", 1), "node-b", "cam.1", "2026-11-22_10-00-10-000000"},
		"later expiry, same MAC":      {tok[:i-3] + "999" + tok[i:], "node-b", "cam.1", seg},
		"no MAC":                      {tok[:i], "node-b", "cam.1", seg},
		"empty":                       {"cgarchive~", "node-b", "cam.1", seg},
		"nothing":                     {"", "node-b", "cam.1", seg},
		"a relay token":               {relay, "node-b", "cam.1", seg},
		"a relay token, peer prefix":  {archivePeerPrefix + strings.TrimPrefix(relay, relayPrefix), "node-b", "cam.1", seg},
		"fields shifted":              {"cgarchive~node-a~node-b~cam.1~x~" + seg + tok[i:], "node-b", "cam.1", seg},
		"peer MAC on a relay body":    {"cgrelay~node-a~10.0.0.2~cam.1~1800000060~" + tok[i+1:], "node-b", "cam.1", seg},
		"mixed separators in a field": {strings.Replace(tok, "node-a", "node.a~x", 1), "node-b", "cam.1", seg},
	} {
		if _, err := s.verifyArchivePeer(c.raw, c.self, c.camera, c.segment); !errors.Is(err, session.ErrUnauthenticated) {
			t.Errorf("%s: %v; want unauthenticated", name, err)
		}
	}
	// A peer token is no relay token, and no viewer credential.
	if _, _, err := s.verifyRelay(tok); err == nil {
		t.Error("a node token verified as a relay token")
	}
	if _, err := other.verifyArchivePeer(tok, "node-b", "cam.1", seg); !errors.Is(err, session.ErrUnauthenticated) {
		t.Errorf("another cluster's secret accepted the token: %v", err)
	}
	if _, err := none.verifyArchivePeer(tok, "node-b", "cam.1", seg); !errors.Is(err, session.ErrUnauthenticated) {
		t.Errorf("a node without a secret accepted the token: %v", err)
	}
	now = now.Add(relayTTL + time.Second)
	if _, err := s.verifyArchivePeer(tok, "node-b", "cam.1", seg); !errors.Is(err, session.ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired node token: %v", err)
	}
}

func FuzzVerifyArchivePeer(f *testing.F) {
	s := &Service{RelaySecret: []byte(strings.Repeat("k", 32)), Now: time.Now}
	const seg = "2026-11-22_10-00-00-000000"
	f.Add(s.ArchivePeerToken("node-a", "node-b", "cam1", seg), "node-b", "cam1", seg)
	f.Add("cgarchive~a~b~c~d~e~f", "b", "c", "d")
	f.Add(s.RelayToken("node-a", "10.0.0.2", "cam1"), "node-b", "cam1", seg)
	f.Fuzz(func(t *testing.T, raw, self, camera, segment string) {
		from, err := s.verifyArchivePeer(raw, self, camera, segment)
		if err != nil {
			return
		}
		// Only a token this secret signed verifies, for what it names.
		want := archivePeerPrefix + strings.Join([]string{from, self, camera, segment}, peerSep) + peerSep
		if !strings.HasPrefix(raw, want) || from == "" {
			t.Fatalf("%q verified for %s/%s/%s from %q", raw, self, camera, segment, from)
		}
	})
}

func BenchmarkVerifyArchivePeer(b *testing.B) {
	s := &Service{RelaySecret: []byte(strings.Repeat("k", 32)), Now: time.Now}
	const seg = "2026-11-22_10-00-00-000000"
	tok := s.ArchivePeerToken("node-a", "node-b", "cam1", seg)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.verifyArchivePeer(tok, "node-b", "cam1", seg); err != nil {
			b.Fatal(err)
		}
	}
}
