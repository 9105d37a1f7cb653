package access

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/session"
)

func TestRelayTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &Service{RelaySecret: []byte(strings.Repeat("k", 32)), Now: func() time.Time { return now }}
	tok := s.RelayToken("node-b", "cam1")
	if !IsRelayToken(tok) {
		t.Fatalf("%q is not a relay token", tok)
	}
	p, err := s.verifyRelay(tok)
	if err != nil || p.Kind != KindRelay || p.ID != "node-b" || p.Device != "cam1" {
		t.Fatalf("verify: %+v %v", p, err)
	}
	other := &Service{RelaySecret: []byte(strings.Repeat("x", 32)), Now: s.Now}
	none := &Service{Now: s.Now}
	if none.RelayToken("a", "cam1") != "" {
		t.Fatal("a node without a secret mints relay tokens")
	}
	i := strings.LastIndexByte(tok, '.')
	for name, raw := range map[string]string{
		"another camera, same MAC": strings.Replace(tok, ".cam1.", ".cam2.", 1),
		"another node, same MAC":   strings.Replace(tok, "node-b", "node-c", 1),
		"later expiry, same MAC":   tok[:i-3] + "999" + tok[i:],
		"fields shifted":           "cgrelay.node-b.cam1.x.1800000060." + tok[i+1:],
		"no MAC":                   tok[:i],
		"empty":                    "cgrelay.",
	} {
		if _, err := s.verifyRelay(raw); !errors.Is(err, session.ErrUnauthenticated) {
			t.Errorf("%s: %v; want unauthenticated", name, err)
		}
	}
	if _, err := other.verifyRelay(tok); !errors.Is(err, session.ErrUnauthenticated) {
		t.Errorf("another cluster's secret accepted the token: %v", err)
	}
	if _, err := none.verifyRelay(tok); !errors.Is(err, session.ErrUnauthenticated) {
		t.Errorf("a node without a secret accepted the token: %v", err)
	}
	now = now.Add(relayTTL + time.Second)
	if _, err := s.verifyRelay(tok); !errors.Is(err, session.ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired relay token: %v", err)
	}
}

func FuzzVerifyRelay(f *testing.F) {
	s := &Service{RelaySecret: []byte(strings.Repeat("k", 32)), Now: time.Now}
	f.Add(s.RelayToken("node-b", "cam1"))
	f.Add("cgrelay.a.b.c.d")
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := s.verifyRelay(raw)
		if err == nil && (p.Kind != KindRelay || p.ID == "" || p.Device == "") {
			t.Fatalf("%q verified as %+v", raw, p)
		}
	})
}
