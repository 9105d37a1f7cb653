package authz_test

import (
	"path/filepath"
	"testing"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/storetest"
)

func TestBoltStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() (authz.Store, error) {
		path := filepath.Join(t.TempDir(), "camgate.db")
		return func() (authz.Store, error) { return authz.OpenBoltStore(path) }
	})
}

func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() (authz.Store, error) {
		s := authz.NewMemStoreForTest()
		return func() (authz.Store, error) { return s, nil }
	})
}
