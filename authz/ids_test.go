package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"strings"
	"testing"
)

// Issue 15 hole 16: an id is exactly one safe path segment. Whatever form an
// encoded slash or dot segment reaches authz in (raw, decoded then split,
// decoded whole), the request is a 400 and no other id is written.
func TestIDsAreOnePlainSegment(t *testing.T) {
	h := newHarness(t)
	h.base()
	site := map[string]any{"org": "acme", "name": "B"}
	bad := []struct{ name, path string }{
		{"encoded slash and dots", "/sites/a%2F..%2Fb"},
		{"encoded dots", "/sites/%2e%2e"},
		{"decoded and split", "/sites/a/../b"},
		{"lone dot", "/sites/."},
		{"dot dot", "/sites/.."},
		{"trailing dot", "/sites/b."},
		{"leading dot", "/sites/.b"},
		{"inner dot dot", "/sites/a..b"},
		{"backslash", `/sites/a\..\b`},
		{"percent", "/sites/b%00"},
		{"control char", "/sites/b\x00"},
		{"space", "/sites/b%20"},
		{"non-ASCII", "/sites/bé"},
		{"too long", "/sites/" + strings.Repeat("a", 65)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			field := "id"
			if tc.name == "decoded and split" {
				field = "path"
			}
			expectRefused(t, h, root, "PUT", tc.path, site, nil, field, "")
		})
	}
	for _, id := range []string{"b.", "..", "a/../b", "."} {
		t.Run("POST body id "+id, func(t *testing.T) {
			expectRefused(t, h, root, "POST", "/sites", map[string]any{"id": id, "org": "acme"}, nil, "id", "")
		})
	}
	h.fails(root, "GET", "/sites/b", nil, ErrNotFound, "")
	// Ordinary ids, dotted ones included, still work.
	for _, id := range []string{"b", "cam.lobby-1", "B_2", "x-"} {
		h.must(root, "PUT", "/sites/"+id, site)
	}
}
