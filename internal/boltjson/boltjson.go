// Package boltjson keeps JSON records in one bbolt bucket, keyed by id, for
// the embedded stores that hold one kind of record each (share links and
// their keys, stream credentials).
package boltjson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// fnError carries the callback's own error out of the transaction so it is
// returned unwrapped.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// Update replaces record id in bucket with what fn makes of the current one
// (nil when there is none; returning nil deletes it), in one transaction.
// fn's own error is returned as it is, and then nothing is written.
func Update[T any](ctx context.Context, db *bolt.DB, bucket []byte, id string, fn func(cur *T) (*T, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id == "" {
		return errors.New("boltjson: empty id")
	}
	err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		var cur *T
		if v := b.Get([]byte(id)); v != nil {
			cur = new(T)
			if err := json.Unmarshal(v, cur); err != nil {
				return err
			}
		}
		next, err := fn(cur)
		if err != nil {
			return fnError{err}
		}
		if next == nil {
			return b.Delete([]byte(id))
		}
		data, err := json.Marshal(next)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), data)
	})
	var fe fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	if err != nil {
		return fmt.Errorf("update %s/%s: %w", bucket, id, err)
	}
	return nil
}
