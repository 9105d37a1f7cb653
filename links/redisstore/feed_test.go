package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
	"github.com/camgate/camgate/links"
	"github.com/camgate/camgate/links/redisstore"
)

func putLink(t *testing.T, s *redisstore.Store, id string, enabled bool) {
	t.Helper()
	err := s.UpdateLink(context.Background(), id, func(*links.Link) (*links.Link, error) {
		return &links.Link{ID: id, Device: "cam1", Enabled: enabled}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// watcher runs Watch in the background, resuming from its last revision
// after an error as the gateway does, and records what it saw.
type watcher struct {
	mu   sync.Mutex
	ids  []string
	errs []error
}

func (w *watcher) seen() ([]string, []error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ids), slices.Clone(w.errs)
}

func startWatcher(t *testing.T, s *redisstore.Store, from uint64) *watcher {
	w := &watcher{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		last := from
		for ctx.Err() == nil {
			var err error
			last, err = s.Watch(ctx, last, func(id string) { w.mu.Lock(); w.ids = append(w.ids, id); w.mu.Unlock() })
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.errs = append(w.errs, err)
			w.mu.Unlock()
			if errors.Is(err, redisstore.ErrFeedGap) {
				return
			}
			select { // the gateway backs off the same way
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return w
}

// TestLinkFeedCatchesUpAfterCut: a reader whose connection is cut misses
// no link write made meanwhile; it gets them, in order, once back.
func TestLinkFeedCatchesUpAfterCut(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	proxy := redistest.NewProxy(t, srv.Addr)
	writer := redisstore.New(srv.Client(), "")
	rc := redis.NewClient(&redis.Options{Addr: proxy.Addr})
	defer rc.Close()
	reader := redisstore.New(rc, "")
	reader.Heartbeat, reader.HeartbeatSlack = 100*time.Millisecond, 200*time.Millisecond

	putLink(t, writer, "l1", true)
	from, err := reader.FeedRev(context.Background())
	if err != nil || from != 1 {
		t.Fatalf("FeedRev %d %v; want 1", from, err)
	}
	w := startWatcher(t, reader, from)
	putLink(t, writer, "l2", true)
	poll.Until(t, "the reader to see l2", func() bool { ids, _ := w.seen(); return slices.Equal(ids, []string{"l2"}) })

	proxy.Cut()
	poll.Until(t, "the reader to lose its connection", func() bool { _, errs := w.seen(); return len(errs) > 0 })
	putLink(t, writer, "l3", false)
	putLink(t, writer, "l3", true)
	putLink(t, writer, "l4", false)
	proxy.Restore()
	want := []string{"l2", "l3", "l3", "l4"}
	poll.Until(t, "the reader to catch up", func() bool { ids, _ := w.seen(); return slices.Equal(ids, want) })
	if _, errs := w.seen(); slices.ContainsFunc(errs, func(e error) bool { return errors.Is(e, redisstore.ErrFeedGap) }) {
		t.Fatalf("a gap reported on a plain reconnect: %v", errs)
	}
}

// TestLinkFeedGap: entries the reader needs but cannot read (deleted,
// trimmed) and a revision that went back (Redis lost its data) end Watch
// with ErrFeedGap, even when no new change comes.
func TestLinkFeedGap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes int
		damage func(c *redis.Client)
	}{
		{"entry deleted", 3, func(c *redis.Client) { c.XDel(context.Background(), "camgate:{camgate}:link-changes", "2-0") }},
		{"revision went back", 1, func(c *redis.Client) { c.FlushAll(context.Background()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{NoPersistence: true})
			c := srv.Client()
			s := redisstore.New(c, "")
			s.Heartbeat, s.HeartbeatSlack = 50*time.Millisecond, time.Second
			for i := range tc.writes {
				putLink(t, s, fmt.Sprintf("l%d", i+1), true)
			}
			tc.damage(c)
			w := startWatcher(t, s, 1)
			poll.Until(t, "ErrFeedGap", func() bool {
				_, errs := w.seen()
				return len(errs) > 0 && errors.Is(errs[len(errs)-1], redisstore.ErrFeedGap)
			})
			if ids, _ := w.seen(); len(ids) != 0 {
				t.Fatalf("applied %v across a gap", ids)
			}
		})
	}
}

// TestStoreDownIsUnavailable: with Redis gone, reads and writes fail with
// links.ErrStoreUnavailable (a 503 at the edges), not an anonymous error.
func TestStoreDownIsUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	defer c.Close()
	s := redisstore.New(c, "")
	putLink(t, s, "l1", true)
	srv.Kill()
	ctx := context.Background()
	_, errGet := s.GetLink(ctx, "l1")
	_, errList := s.ListLinks(ctx)
	errUpdate := s.UpdateLink(ctx, "l1", func(cur *links.Link) (*links.Link, error) { return cur, nil })
	for name, err := range map[string]error{"GetLink": errGet, "ListLinks": errList, "UpdateLink": errUpdate} {
		if !errors.Is(err, links.ErrStoreUnavailable) {
			t.Errorf("%s with Redis down: %v; want links.ErrStoreUnavailable", name, err)
		}
	}
}
