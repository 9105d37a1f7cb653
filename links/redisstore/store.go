// Package redisstore is the links.Store shared by several camgate nodes:
// links and signing keys as JSON in two Redis hashes, and a change feed of
// link ids,
//
//	camgate:{camgate}:links         hash    link id → link JSON
//	camgate:{camgate}:link-keys     hash    kid → signing key JSON
//	camgate:{camgate}:link-rev      string  the feed's revision, +1 per link write
//	camgate:{camgate}:link-changes  stream  entry id "<rev>-0", field link = the id
//
// (hash-tagged like the authz store, so all camgate data lives in one
// Cluster slot). Updates are optimistic read-modify-writes: WATCH the hash,
// read, call fn, write in MULTI; a concurrent write makes EXEC fail and the
// update is retried with the new value (links.Store allows fn to run again).
// A link write and its feed entry are one script, so no node can see one
// without the other; Watch reads the feed by revision, so a node that was
// disconnected catches up instead of missing changes (see feed.go). The
// keys have no TTL: they are the data.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/internal/redishash"
	"github.com/camgate/camgate/links"
)

// Store implements links.Store on Redis. The zero value is not usable: use
// New.
type Store struct {
	// FeedLength is about how many link changes the feed keeps (XADD
	// MAXLEN ~); a node further behind re-checks every link. Default 10000.
	FeedLength int64
	// Heartbeat is how long one read of the feed blocks before Watch checks
	// the revision; a read unanswered for Heartbeat+HeartbeatSlack is a
	// broken connection. Defaults 1s and 2s.
	Heartbeat, HeartbeatSlack time.Duration

	client                      redis.UniversalClient
	kLinks, kKey, kRev, kChange string
}

// New returns a store on c under namespace ns ("" = "camgate"). The client
// is shared and not closed by Close.
func New(c redis.UniversalClient, ns string) *Store {
	if ns == "" {
		ns = "camgate"
	}
	p := ns + ":{" + ns + "}:"
	return &Store{
		FeedLength: 10000, Heartbeat: time.Second, HeartbeatSlack: 2 * time.Second,
		client: c, kLinks: p + "links", kKey: p + "link-keys", kRev: p + "link-rev", kChange: p + "link-changes",
	}
}

// GetLink implements links.Store.
func (s *Store) GetLink(ctx context.Context, id string) (links.Link, error) {
	v, err := s.client.HGet(ctx, s.kLinks, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return links.Link{}, links.ErrNotFound
	}
	if err != nil {
		return links.Link{}, fmt.Errorf("%w: read link: %w", links.ErrStoreUnavailable, err)
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

// UpdateLink implements links.Store; the write is announced on the feed.
func (s *Store) UpdateLink(ctx context.Context, id string, fn func(cur *links.Link) (*links.Link, error)) error {
	return redishash.Update(ctx, s.client, s.kLinks, id, fn, redishash.Options{Write: s.writeLink, Unavailable: links.ErrStoreUnavailable})
}

// UpdateKey implements links.Store.
func (s *Store) UpdateKey(ctx context.Context, kid string, fn func(cur *links.SigningKey) (*links.SigningKey, error)) error {
	return redishash.Update(ctx, s.client, s.kKey, kid, fn, redishash.Options{Unavailable: links.ErrStoreUnavailable})
}

// writeLinkScript: KEYS links, rev, changes; ARGV id, data ("" deletes),
// feed length. The feed entry comes first: it is the only step that can
// fail on valid input (a feed already past the revision), and then nothing
// is written.
const writeLinkScript = `
local rev = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], rev .. '-0', 'link', ARGV[1])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('SET', KEYS[2], rev)
return rev
`

// writeLink queues the write of one link and its feed entry (data nil
// deletes).
func (s *Store) writeLink(ctx context.Context, p redis.Pipeliner, id string, data []byte) {
	p.Eval(ctx, writeLinkScript, []string{s.kLinks, s.kRev, s.kChange}, id, data, s.FeedLength)
}

// Close implements links.Store; the shared client stays open.
func (s *Store) Close() error { return nil }

func list[T any](ctx context.Context, c redis.UniversalClient, key string) ([]T, error) {
	m, err := c.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: list %s: %w", links.ErrStoreUnavailable, key, err)
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
