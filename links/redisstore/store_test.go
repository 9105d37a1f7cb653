package redisstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/camgate/camgate/internal/redistest"
	"github.com/camgate/camgate/links"
	"github.com/camgate/camgate/links/linkstest"
	"github.com/camgate/camgate/links/redisstore"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := srv.Client()
	var seq atomic.Int64
	linkstest.Run(t, func(t *testing.T) func() (links.Store, error) {
		ns := fmt.Sprintf("t%d", seq.Add(1))
		return func() (links.Store, error) { return redisstore.New(c, ns), nil }
	})
}
