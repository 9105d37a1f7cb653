package authz_test

import (
	"context"
	"fmt"
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
		s := &memStore{}
		return func() (authz.Store, error) { return s, nil }
	})
}

func TestBoltAuditKeepsNewest(t *testing.T) {
	st, err := authz.OpenBoltStore(filepath.Join(t.TempDir(), "camgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for seq := uint64(1); seq <= 5; seq++ {
		if err := st.AppendAudit(ctx, []authz.AuditEntry{{Seq: seq, What: fmt.Sprint("w", seq)}}, 3); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.LoadAudit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 3 || got[2].Seq != 5 {
		t.Fatalf("LoadAudit = %+v; want seq 3, 4, 5 oldest first", got)
	}
}
