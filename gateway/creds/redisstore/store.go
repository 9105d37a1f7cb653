// Package redisstore is the creds.Store shared by several camgate nodes:
// credentials as JSON in one Redis hash,
//
//	camgate:{camgate}:stream-credentials   id → credential JSON
//
// hash-tagged like the authz and links stores, so all camgate data lives in
// one Cluster slot. Updates are optimistic read-modify-writes (WATCH, read,
// fn, MULTI/EXEC; a concurrent write retries fn on the new value). The key
// has no TTL: it is the data. What it holds is a salted hash and a sealed
// HA1 per credential, never a password (package creds says why).
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/gateway/creds"
	"github.com/camgate/camgate/internal/redishash"
)

// Store implements creds.Store on Redis. Use New.
type Store struct {
	client redis.UniversalClient
	key    string
}

// New returns a store on c under namespace ns ("" = "camgate"). The client
// is shared and not closed by Close.
func New(c redis.UniversalClient, ns string) *Store {
	if ns == "" {
		ns = "camgate"
	}
	return &Store{client: c, key: ns + ":{" + ns + "}:stream-credentials"}
}

// Get implements creds.Store.
func (s *Store) Get(ctx context.Context, id string) (creds.Credential, error) {
	v, err := s.client.HGet(ctx, s.key, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return creds.Credential{}, creds.ErrNotFound
	}
	if err != nil {
		return creds.Credential{}, fmt.Errorf("stream credentials: read %s: %w", id, err)
	}
	var c creds.Credential
	if err := json.Unmarshal(v, &c); err != nil {
		return creds.Credential{}, fmt.Errorf("stream credentials: read %s: %w", id, err)
	}
	return c, nil
}

// List implements creds.Store.
func (s *Store) List(ctx context.Context) ([]creds.Credential, error) {
	m, err := s.client.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("stream credentials: list: %w", err)
	}
	out := make([]creds.Credential, 0, len(m))
	for id, v := range m {
		var c creds.Credential
		if err := json.Unmarshal([]byte(v), &c); err != nil {
			return nil, fmt.Errorf("stream credentials: list: %s: %w", id, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// Update implements creds.Store.
func (s *Store) Update(ctx context.Context, id string, fn func(cur *creds.Credential) (*creds.Credential, error)) error {
	if id == "" {
		return errors.New("stream credentials: empty id")
	}
	return redishash.Update(ctx, s.client, s.key, id, fn, redishash.Options{})
}

// Close implements creds.Store; the shared client stays open.
func (s *Store) Close() error { return nil }
