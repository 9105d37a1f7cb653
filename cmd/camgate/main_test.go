package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/camgate/camgate/authz/token"
)

func TestSubcommands(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"version"}, &out, &errb); err != nil || !strings.HasPrefix(out.String(), "camgate ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := run([]string{"bogus"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown subcommand: %v", err)
	}
	if err := run(nil, &out, &errb); err == nil {
		t.Fatal("no subcommand must be an error")
	}
}

func TestTokenMintsAVerifiableToken(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	t.Setenv("CAMGATE_AUTH_VIEWER_JWT_HS256_SECRET", secret)
	t.Setenv("CAMGATE_DATA_DIR", t.TempDir())
	var out, errb bytes.Buffer
	if err := run([]string{"token", "--sub", "alice", "--ttl", "1h"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	v := &token.Verifier{HS256Secret: []byte(secret)}
	if err := v.Initialize(); err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(strings.TrimSpace(out.String()))
	if err != nil || c.Subject != "alice" {
		t.Fatalf("minted token: %+v %v", c, err)
	}
	if err := run([]string{"token", "--ttl", "1h"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "--sub") {
		t.Fatalf("missing --sub: %v", err)
	}
}

func TestTokenWithoutSecretExplains(t *testing.T) {
	t.Setenv("CAMGATE_DATA_DIR", t.TempDir())
	var out, errb bytes.Buffer
	err := run([]string{"token", "--sub", "alice"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "hs256_secret") {
		t.Fatalf("want an explanation naming the key, got %v", err)
	}
}
