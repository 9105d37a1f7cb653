package redisstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/camgate/camgate/gateway/creds"
	"github.com/camgate/camgate/gateway/creds/credstest"
	"github.com/camgate/camgate/gateway/creds/redisstore"
	"github.com/camgate/camgate/internal/redistest"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := srv.Client()
	var seq atomic.Int64
	credstest.Run(t, func(t *testing.T) func() (creds.Store, error) {
		ns := fmt.Sprintf("t%d", seq.Add(1))
		return func() (creds.Store, error) { return redisstore.New(c, ns), nil }
	})
}
