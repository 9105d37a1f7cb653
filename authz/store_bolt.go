package authz

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltStore is the embedded Store: one bbolt file, every commit fsynced before
// Commit returns. Records live in one bucket keyed "kind\x00id"; the revision
// lives in a meta bucket and changes in the same transaction as the records.
type BoltStore struct {
	db *bolt.DB
}

var (
	boltRecords = []byte("records")
	boltMeta    = []byte("meta")
	boltRevKey  = []byte("rev")
)

// OpenBoltStore opens (creating if needed) the store file at path.
func OpenBoltStore(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("authz: open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(boltRecords); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(boltMeta)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("authz: init store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

func boltKey(kind, id string) []byte {
	return []byte(kind + "\x00" + id)
}

func boltRev(tx *bolt.Tx) uint64 {
	v := tx.Bucket(boltMeta).Get(boltRevKey)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Load implements Store.
func (s *BoltStore) Load(ctx context.Context) (uint64, []Record, error) {
	var rev uint64
	var recs []Record
	err := s.db.View(func(tx *bolt.Tx) error {
		rev = boltRev(tx)
		return tx.Bucket(boltRecords).ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return fmt.Errorf("malformed key %q", k)
			}
			recs = append(recs, Record{Kind: string(k[:i]), ID: string(k[i+1:]), Data: bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("authz: load store: %w", err)
	}
	return rev, recs, nil
}

// Commit implements Store.
func (s *BoltStore) Commit(ctx context.Context, expectRev uint64, muts []Mutation) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		rev = boltRev(tx)
		if rev != expectRev {
			return ErrRevisionConflict
		}
		b := tx.Bucket(boltRecords)
		for _, m := range muts {
			if m.Kind == "" || strings.IndexByte(m.Kind, 0) >= 0 {
				return fmt.Errorf("invalid kind %q", m.Kind)
			}
			k := boltKey(m.Kind, m.ID)
			var err error
			if m.Data == nil {
				err = b.Delete(k)
			} else {
				err = b.Put(k, m.Data)
			}
			if err != nil {
				return err
			}
		}
		rev++
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], rev)
		return tx.Bucket(boltMeta).Put(boltRevKey, v[:])
	})
	if errors.Is(err, ErrRevisionConflict) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("authz: commit: %w", err)
	}
	return rev, nil
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }

var boltAudit = []byte("audit")

// AppendAudit implements AuditStore: entries keyed by sequence number, the
// oldest beyond keep pruned in the same transaction.
func (s *BoltStore) AppendAudit(ctx context.Context, entries []AuditEntry, keep int) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(boltAudit)
		if err != nil {
			return err
		}
		var last uint64
		for _, e := range entries {
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], e.Seq)
			if err := b.Put(k[:], data); err != nil {
				return err
			}
			last = max(last, e.Seq)
		}
		if keep <= 0 || last <= uint64(keep) {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= last-uint64(keep); k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("authz: append audit: %w", err)
	}
	return nil
}

// LoadAudit implements AuditStore.
func (s *BoltStore) LoadAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltAudit)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("authz: load audit: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}
