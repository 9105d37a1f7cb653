package events

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var boltEvents = []byte("events")

// BoltStore is the embedded feed: one bbolt file (DATA/events.db), events
// keyed by a big-endian sequence number. Appends wake local waiters; it
// serves one node.
type BoltStore struct {
	db *bolt.DB

	mu     sync.Mutex    // guards notify
	notify chan struct{} // closed and replaced at every append
}

// OpenBoltStore opens (creating if needed) the feed file at path.
func OpenBoltStore(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("events: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltEvents)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("events: %s: %w", path, err)
	}
	return &BoltStore{db: db, notify: make(chan struct{})}, nil
}

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// Append implements Store.
func (b *BoltStore) Append(_ context.Context, ev *Event) error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltEvents)
		n, err := bk.NextSequence()
		if err != nil {
			return err
		}
		ev.ID = strconv.FormatUint(n, 10)
		v, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		return bk.Put(seqKey(n), v)
	})
	if err != nil {
		return fmt.Errorf("events: append: %w", err)
	}
	b.mu.Lock()
	close(b.notify)
	b.notify = make(chan struct{})
	b.mu.Unlock()
	return nil
}

// After implements Store.
func (b *BoltStore) After(_ context.Context, after string, limit int) ([]Event, error) {
	from := uint64(0)
	if after != "" {
		n, err := strconv.ParseUint(after, 10, 64)
		if err != nil {
			return nil, ErrBadCursor
		}
		from = n
	}
	var out []Event
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltEvents).Cursor()
		for k, v := c.Seek(seqKey(from + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				continue // a record we cannot read is skipped, not fatal to the feed
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// Wait implements Store.
func (b *BoltStore) Wait(ctx context.Context, after string, limit int) ([]Event, error) {
	for {
		b.mu.Lock()
		ch := b.notify
		b.mu.Unlock()
		evs, err := b.After(ctx, after, limit)
		if err != nil || len(evs) > 0 {
			return evs, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Last implements Store.
func (b *BoltStore) Last(context.Context) (string, error) {
	last := ""
	err := b.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(boltEvents).Cursor().Last(); k != nil {
			last = strconv.FormatUint(binary.BigEndian.Uint64(k), 10)
		}
		return nil
	})
	return last, err
}

// Prune implements Store.
func (b *BoltStore) Prune(_ context.Context, before time.Time) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltEvents)
		var old [][]byte
		c := bk.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var ev struct{ Time time.Time }
			if err := json.Unmarshal(v, &ev); err == nil && !ev.Time.Before(before) {
				break
			}
			old = append(old, append([]byte(nil), k...))
		}
		for _, k := range old {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Compare implements Store.
func (b *BoltStore) Compare(x, y string) int {
	nx, _ := strconv.ParseUint(x, 10, 64)
	ny, _ := strconv.ParseUint(y, 10, 64)
	return bytes.Compare(seqKey(nx), seqKey(ny))
}

// ParseCursor implements Store.
func (b *BoltStore) ParseCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return "", ErrBadCursor
	}
	return strconv.FormatUint(n, 10), nil
}

// Close implements Store.
func (b *BoltStore) Close() error { return b.db.Close() }
