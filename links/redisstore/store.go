// Package redisstore is the links.Store shared by several camgate nodes:
// links and signing keys as JSON in two Redis hashes,
//
//	camgate:{camgate}:links      link id → link JSON
//	camgate:{camgate}:link-keys  kid → signing key JSON
//
// (hash-tagged like the authz store, so all camgate data lives in one
// Cluster slot). Updates are optimistic read-modify-writes: WATCH the hash,
// read, call fn, write in MULTI; a concurrent write makes EXEC fail and the
// update is retried with the new value (links.Store allows fn to run again).
// The keys have no TTL: they are the data.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/internal/redishash"
	"github.com/camgate/camgate/links"
)

// Store implements links.Store on Redis. The zero value is not usable: use
// New.
type Store struct {
	client       redis.UniversalClient
	kLinks, kKey string
}

// New returns a store on c under namespace ns ("" = "camgate"). The client
// is shared and not closed by Close.
func New(c redis.UniversalClient, ns string) *Store {
	if ns == "" {
		ns = "camgate"
	}
	p := ns + ":{" + ns + "}:"
	return &Store{client: c, kLinks: p + "links", kKey: p + "link-keys"}
}

// GetLink implements links.Store.
func (s *Store) GetLink(ctx context.Context, id string) (links.Link, error) {
	v, err := s.client.HGet(ctx, s.kLinks, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return links.Link{}, links.ErrNotFound
	}
	if err != nil {
		return links.Link{}, fmt.Errorf("links: read link: %w", err)
	}
	var l links.Link
	if err := json.Unmarshal(v, &l); err != nil {
		return links.Link{}, fmt.Errorf("links: read link %s: %w", id, err)
	}
	return l, nil
}

// ListLinks implements links.Store.
func (s *Store) ListLinks(ctx context.Context) ([]links.Link, error) {
	return list[links.Link](ctx, s.client, s.kLinks)
}

// ListKeys implements links.Store.
func (s *Store) ListKeys(ctx context.Context) ([]links.SigningKey, error) {
	return list[links.SigningKey](ctx, s.client, s.kKey)
}

// UpdateLink implements links.Store.
func (s *Store) UpdateLink(ctx context.Context, id string, fn func(cur *links.Link) (*links.Link, error)) error {
	return redishash.Update(ctx, s.client, s.kLinks, id, fn)
}

// UpdateKey implements links.Store.
func (s *Store) UpdateKey(ctx context.Context, kid string, fn func(cur *links.SigningKey) (*links.SigningKey, error)) error {
	return redishash.Update(ctx, s.client, s.kKey, kid, fn)
}

// Close implements links.Store; the shared client stays open.
func (s *Store) Close() error { return nil }

func list[T any](ctx context.Context, c redis.UniversalClient, key string) ([]T, error) {
	m, err := c.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("links: list %s: %w", key, err)
	}
	out := make([]T, 0, len(m))
	for id, v := range m {
		var x T
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			return nil, fmt.Errorf("links: list %s: %s: %w", key, id, err)
		}
		out = append(out, x)
	}
	return out, nil
}
