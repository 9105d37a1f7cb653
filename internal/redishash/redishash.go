// Package redishash keeps JSON records in one Redis hash and updates them
// with optimistic concurrency (WATCH/MULTI), for the stores several nodes
// share (share links, stream credentials).
package redishash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// MaxAttempts bounds optimistic retries under contention.
const MaxAttempts = 32

// Options adjust Update.
type Options struct {
	// Write queues the write of the record (data nil deletes) in the
	// transaction, instead of a plain HSET/HDEL: e.g. with a change-feed
	// entry in the same step.
	Write func(ctx context.Context, p redis.Pipeliner, id string, data []byte)
	// Unavailable, when set, is wrapped by errors that come from Redis
	// itself (an outage), so callers can answer 503.
	Unavailable error
}

// fnError carries the callback's own error out of the transaction so it is
// returned unwrapped.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// Update replaces the JSON record id in the hash key with what fn makes
// of the current one (nil when there is none; returning nil deletes it),
// atomically: under WATCH, run again on the new value when another client
// wrote the hash first (at most MaxAttempts times). fn's own error is
// returned as it is; a stored record that does not decode is an error
// that is not retried.
func Update[T any](ctx context.Context, c redis.UniversalClient, key, id string, fn func(cur *T) (*T, error), o Options) error {
	if id == "" {
		return errors.New("redishash: empty id")
	}
	txf := func(tx *redis.Tx) error {
		var cur *T
		v, err := tx.HGet(ctx, key, id).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return err
		default:
			cur = new(T)
			if err := json.Unmarshal(v, cur); err != nil {
				return fnError{fmt.Errorf("redis: stored %s/%s does not decode: %w", key, id, err)}
			}
		}
		next, err := fn(cur)
		if err != nil {
			return fnError{err}
		}
		var data []byte
		if next != nil {
			if data, err = json.Marshal(next); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			switch {
			case o.Write != nil:
				o.Write(ctx, p, id, data)
			case next == nil:
				p.HDel(ctx, key, id)
			default:
				p.HSet(ctx, key, id, data)
			}
			return nil
		})
		return err
	}
	for range MaxAttempts {
		err := c.Watch(ctx, txf, key)
		var fe fnError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &fe):
			return fe.err
		case errors.Is(err, redis.TxFailedErr):
			continue // another client wrote the hash first: run fn on the new value
		case o.Unavailable != nil:
			return fmt.Errorf("%w: update %s/%s: %w", o.Unavailable, key, id, err)
		default:
			return fmt.Errorf("redis: update %s/%s: %w", key, id, err)
		}
	}
	return fmt.Errorf("redis: update %s/%s: too much contention", key, id)
}
