package links_test

import (
	"path/filepath"
	"testing"

	"github.com/camgate/camgate/links"
	"github.com/camgate/camgate/links/linkstest"
)

func TestBoltStoreConformance(t *testing.T) {
	linkstest.Run(t, func(t *testing.T) func() (links.Store, error) {
		path := filepath.Join(t.TempDir(), "links.db")
		return func() (links.Store, error) { return links.OpenBoltStore(path) }
	})
}
