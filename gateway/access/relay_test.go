package access

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/session"
)

// peersFunc is a RelayPeers made of a function.
type peersFunc func(node string) (string, bool, error)

func (f peersFunc) PeerHost(_ context.Context, node string) (string, bool, error) { return f(node) }

func TestRelayTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &Service{RelaySecret: []byte(strings.Repeat("k", 32)), Now: func() time.Time { return now }}
	tok := s.RelayToken("node-b", "10.0.0.2", "cam.1")
	if !IsRelayToken(tok) {
		t.Fatalf("%q is not a relay token", tok)
	}
	p, host, err := s.verifyRelay(tok)
	if err != nil || p.Kind != KindRelay || p.ID != "node-b" || p.Device != "cam.1" || host != "10.0.0.2" {
		t.Fatalf("verify: %+v %q %v", p, host, err)
	}
	other := &Service{RelaySecret: []byte(strings.Repeat("x", 32)), Now: s.Now}
	none := &Service{Now: s.Now}
	if none.RelayToken("a", "10.0.0.2", "cam1") != "" {
		t.Fatal("a node without a secret mints relay tokens")
	}
	i := strings.LastIndex(tok, relaySep)
	for name, raw := range map[string]string{
		"another camera, same MAC":  strings.Replace(tok, "~cam.1~", "~cam2~", 1),
		"another node, same MAC":    strings.Replace(tok, "node-b", "node-c", 1),
		"another host, same MAC":    strings.Replace(tok, "10.0.0.2", "10.0.0.9", 1),
		"later expiry, same MAC":    tok[:i-3] + "999" + tok[i:],
		"fields shifted":            "cgrelay~node-b~10.0.0.2~cam.1~x~1800000060~" + tok[i+1:],
		"no MAC":                    tok[:i],
		"empty":                     "cgrelay~",
		"the old dotted form":       "cgrelay.node-b.cam1.1800000060." + tok[i+1:],
		"an empty host, its MAC":    s.RelayToken("node-b", "", "cam.1"),
		"a host with the separator": s.RelayToken("node-b", "a~b", "cam.1"),
	} {
		if _, _, err := s.verifyRelay(raw); !errors.Is(err, session.ErrUnauthenticated) {
			t.Errorf("%s: %v; want unauthenticated", name, err)
		}
	}
	if _, _, err := other.verifyRelay(tok); !errors.Is(err, session.ErrUnauthenticated) {
		t.Errorf("another cluster's secret accepted the token: %v", err)
	}
	if _, _, err := none.verifyRelay(tok); !errors.Is(err, session.ErrUnauthenticated) {
		t.Errorf("a node without a secret accepted the token: %v", err)
	}
	now = now.Add(relayTTL + time.Second)
	if _, _, err := s.verifyRelay(tok); !errors.Is(err, session.ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired relay token: %v", err)
	}
}

// TestRelayTokenBinding: a relay token is admitted only from its node's
// advertised address while the node is a live member advertising the
// token's host; a membership that cannot be read is unavailable, not a
// bad credential.
func TestRelayTokenBinding(t *testing.T) {
	members := map[string]string{"node-b": "10.0.0.2", "node-c": "10.0.0.3", "node-l": "localhost"}
	var down error
	s := &Service{RelaySecret: []byte(strings.Repeat("k", 32)), Now: time.Now,
		Peers: peersFunc(func(node string) (string, bool, error) {
			h, ok := members[node]
			return h, ok, down
		})}
	tok := s.RelayToken("node-b", "10.0.0.2", "cam1")
	ctx := context.Background()
	if p, err := s.authenticateRelay(ctx, tok, "10.0.0.2"); err != nil || p.ID != "node-b" {
		t.Fatalf("from its node: %+v %v", p, err)
	}
	if _, err := s.authenticateRelay(ctx, s.RelayToken("node-l", "localhost", "cam1"), "127.0.0.1"); err != nil {
		t.Fatalf("a node advertising a host name, from an address it resolves to: %v", err)
	}
	for name, c := range map[string]struct{ tok, ip string }{
		"replayed from elsewhere":                 {tok, "10.0.0.9"},
		"replayed from another member":            {tok, "10.0.0.3"},
		"no remote address":                       {tok, ""},
		"a node that is no member":                {s.RelayToken("node-x", "10.0.0.9", "cam1"), "10.0.0.9"},
		"a host the node does not advertise":      {s.RelayToken("node-b", "10.0.0.9", "cam1"), "10.0.0.9"},
		"another member's host under node-b's id": {s.RelayToken("node-b", "10.0.0.3", "cam1"), "10.0.0.3"},
		"a host name, from an address it is not":  {s.RelayToken("node-l", "localhost", "cam1"), "10.0.0.9"},
	} {
		if _, err := s.authenticateRelay(ctx, c.tok, c.ip); !errors.Is(err, session.ErrUnauthenticated) {
			t.Errorf("%s: %v; want unauthenticated", name, err)
		}
	}
	down = errors.New("redis: connection refused")
	if _, err := s.authenticateRelay(ctx, tok, "10.0.0.2"); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("membership unreadable: %v; want unavailable", err)
	}
	none := &Service{RelaySecret: s.RelaySecret, Now: time.Now}
	if _, err := none.authenticateRelay(ctx, tok, "10.0.0.2"); !errors.Is(err, session.ErrUnauthenticated) {
		t.Errorf("a service without Peers admitted a relay: %v", err)
	}
}

func FuzzVerifyRelay(f *testing.F) {
	s := &Service{RelaySecret: []byte(strings.Repeat("k", 32)), Now: time.Now}
	f.Add(s.RelayToken("node-b", "10.0.0.2", "cam1"))
	f.Add("cgrelay~a~b~c~d~e")
	f.Fuzz(func(t *testing.T, raw string) {
		p, host, err := s.verifyRelay(raw)
		if err == nil && (p.Kind != KindRelay || p.ID == "" || p.Device == "" || host == "") {
			t.Fatalf("%q verified as %+v at %q", raw, p, host)
		}
	})
}
