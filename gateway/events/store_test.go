package events

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// backends runs fn against every Store: the embedded file and Redis.
func backends(t *testing.T, fn func(t *testing.T, open func() Store)) {
	t.Run("bolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "events.db")
		fn(t, func() Store {
			st, err := OpenBoltStore(path)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		fn(t, func() Store {
			// The gateway's form: a tail connection of its own, blocked
			// until an event arrives.
			st := &RedisStore{Client: srv.Client(), Tail: srv.Client(), Block: -1}
			if err := st.Initialize(); err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

func TestStoreConformance(t *testing.T) {
	backends(t, func(t *testing.T, open func() Store) {
		ctx := context.Background()
		st := open()
		if last, err := st.Last(ctx); err != nil || last != "" {
			t.Fatalf("empty feed: last %q %v", last, err)
		}
		var ids []string
		var cut time.Time
		for i := range 3 {
			if i == 1 { // a cut between the first event and the others, in ms
				first := time.Now()
				poll.Until(t, "the clock to move on", func() bool { return time.Since(first) > 3*time.Millisecond })
				cut = time.Now()
				poll.Until(t, "the clock to move on", func() bool { return time.Since(cut) > 3*time.Millisecond })
			}
			ev := Event{Time: time.Now().UTC(), Kind: KindAlarm, Device: "cam" + string(rune('1'+i))}
			if err := st.Append(ctx, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.ID == "" || (len(ids) > 0 && st.Compare(ev.ID, ids[len(ids)-1]) <= 0) {
				t.Fatalf("id %q after %v", ev.ID, ids)
			}
			ids = append(ids, ev.ID)
		}
		all, err := st.After(ctx, "", 10)
		if err != nil || len(all) != 3 || all[0].ID != ids[0] || all[2].Device != "cam3" {
			t.Fatalf("after none: %+v %v", all, err)
		}
		if rest, _ := st.After(ctx, ids[0], 10); len(rest) != 2 || rest[0].ID != ids[1] {
			t.Fatalf("after the first: %+v", rest)
		}
		if one, _ := st.After(ctx, "", 1); len(one) != 1 {
			t.Fatalf("limit 1: %d", len(one))
		}
		if last, _ := st.Last(ctx); last != ids[2] {
			t.Fatalf("last %q, want %q", last, ids[2])
		}
		for _, bad := range []string{"x", "1-", "-1", "1.5"} {
			if _, err := st.ParseCursor(bad); !errors.Is(err, ErrBadCursor) {
				t.Errorf("cursor %q: %v", bad, err)
			}
		}
		if c, err := st.ParseCursor(ids[1]); err != nil || c != ids[1] {
			t.Fatalf("cursor %q: %q %v", ids[1], c, err)
		}
		if err := st.Prune(ctx, cut); err != nil {
			t.Fatal(err)
		}
		if all, _ := st.After(ctx, "", 10); len(all) != 2 || all[0].ID != ids[1] {
			t.Fatalf("after pruning: %+v", all)
		}

		// Wait returns what another goroutine appends.
		got := make(chan []Event, 1)
		go func() {
			for {
				evs, err := st.Wait(ctx, ids[2], 10)
				if err != nil || len(evs) > 0 {
					got <- evs
					return
				}
			}
		}()
		ev := Event{Kind: KindArmed, Device: "cam9", Time: time.Now()}
		if err := st.Append(ctx, &ev); err != nil {
			t.Fatal(err)
		}
		select {
		case evs := <-got:
			if len(evs) != 1 || evs[0].ID != ev.ID || evs[0].Device != "cam9" {
				t.Fatalf("waited for %+v", evs)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wait did not return the new event")
		}

		// The feed survives a restart of its store.
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st = open()
		defer st.Close()
		if all, _ := st.After(ctx, "", 10); len(all) != 3 || all[2].ID != ev.ID {
			t.Fatalf("after reopening: %+v", all)
		}
	})
}
