package links

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/camgate/camgate/internal/boltjson"
	bolt "go.etcd.io/bbolt"
)

// BoltStore is the embedded Store: one bbolt file (DATA/links.db), links and
// keys as JSON in two buckets, every update fsynced before it returns (bbolt
// syncs on commit).
type BoltStore struct {
	db *bolt.DB
}

var (
	boltLinks = []byte("links")
	boltKeys  = []byte("keys")
)

// OpenBoltStore opens (creating if needed) the store file at path.
func OpenBoltStore(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("links: open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(boltLinks); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(boltKeys)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("links: init store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// GetLink implements Store.
func (s *BoltStore) GetLink(_ context.Context, id string) (Link, error) {
	var l Link
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(boltLinks).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &l)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Link{}, err
		}
		return Link{}, fmt.Errorf("links: read link: %w", err)
	}
	return l, nil
}

// ListLinks implements Store.
func (s *BoltStore) ListLinks(_ context.Context) ([]Link, error) {
	var out []Link
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(boltLinks).ForEach(func(_, v []byte) error {
			var l Link
			if err := json.Unmarshal(v, &l); err != nil {
				return err
			}
			out = append(out, l)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("links: list links: %w", err)
	}
	return out, nil
}

// UpdateLink implements Store.
func (s *BoltStore) UpdateLink(ctx context.Context, id string, fn func(cur *Link) (*Link, error)) error {
	return boltjson.Update(ctx, s.db, boltLinks, id, fn)
}

// ListKeys implements Store.
func (s *BoltStore) ListKeys(_ context.Context) ([]SigningKey, error) {
	var out []SigningKey
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(boltKeys).ForEach(func(_, v []byte) error {
			var k SigningKey
			if err := json.Unmarshal(v, &k); err != nil {
				return err
			}
			out = append(out, k)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("links: list keys: %w", err)
	}
	return out, nil
}

// UpdateKey implements Store.
func (s *BoltStore) UpdateKey(ctx context.Context, kid string, fn func(cur *SigningKey) (*SigningKey, error)) error {
	return boltjson.Update(ctx, s.db, boltKeys, kid, fn)
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }
