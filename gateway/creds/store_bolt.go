package creds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/camgate/camgate/internal/boltjson"
	bolt "go.etcd.io/bbolt"
)

// BoltStore is the embedded Store: one bbolt file
// (DATA/stream-credentials.db, as links keep links.db: authz's store owns
// camgate.db and bbolt's file lock admits one opener), credentials as JSON in
// one bucket, every update fsynced before it returns.
type BoltStore struct{ db *bolt.DB }

var boltBucket = []byte("stream-credentials")

// OpenBoltStore opens (creating if needed) the store file at path.
func OpenBoltStore(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("stream credentials: open store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("stream credentials: init store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// Get implements Store.
func (s *BoltStore) Get(_ context.Context, id string) (Credential, error) {
	var c Credential
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(boltBucket).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &c)
	})
	if errors.Is(err, ErrNotFound) {
		return Credential{}, err
	}
	if err != nil {
		return Credential{}, fmt.Errorf("stream credentials: read %s: %w", id, err)
	}
	return c, nil
}

// List implements Store.
func (s *BoltStore) List(_ context.Context) ([]Credential, error) {
	var out []Credential
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).ForEach(func(_, v []byte) error {
			var c Credential
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("stream credentials: list: %w", err)
	}
	return out, nil
}

// Update implements Store.
func (s *BoltStore) Update(ctx context.Context, id string, fn func(cur *Credential) (*Credential, error)) error {
	if id == "" {
		return errors.New("stream credentials: empty id")
	}
	return boltjson.Update(ctx, s.db, boltBucket, id, fn)
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }
