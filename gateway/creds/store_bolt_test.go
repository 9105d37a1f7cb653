package creds_test

import (
	"path/filepath"
	"testing"

	"github.com/camgate/camgate/gateway/creds"
	"github.com/camgate/camgate/gateway/creds/credstest"
)

func TestBoltStoreConformance(t *testing.T) {
	credstest.Run(t, func(t *testing.T) func() (creds.Store, error) {
		path := filepath.Join(t.TempDir(), "stream-credentials.db")
		return func() (creds.Store, error) { return creds.OpenBoltStore(path) }
	})
}
