package events

import (
	"errors"
	"path/filepath"
	"testing"
)

// ?after= and Last-Event-ID come from clients: any string is either a
// canonical cursor of the store (parsing it again gives itself) or
// ErrBadCursor, for both stores.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "12", "0", "1733212345678-0", "1-", "-1", "18446744073709551616", "+1", " 1", "1-2-3"} {
		f.Add(s)
	}
	bolt, err := OpenBoltStore(filepath.Join(f.TempDir(), "events.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = bolt.Close() })
	stores := []Store{bolt, &RedisStore{}}
	f.Fuzz(func(t *testing.T, s string) {
		for _, st := range stores {
			c, err := st.ParseCursor(s)
			if err != nil {
				if !errors.Is(err, ErrBadCursor) {
					t.Fatalf("%T: %v", st, err)
				}
				continue
			}
			if again, err := st.ParseCursor(c); err != nil || again != c {
				t.Fatalf("%T: %q → %q → %q %v", st, s, c, again, err)
			}
		}
	})
}
