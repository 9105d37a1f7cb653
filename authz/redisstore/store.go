// Package redisstore is the authz.Store for several camgate nodes sharing one
// Redis (standalone, Sentinel or Cluster): the permission records, a revision
// counter and a change feed (a Redis Stream of revision + mutations) that
// every node follows to keep its in-memory model in step (authz.Watcher).
//
// Keys, all in one hash slot so a commit's script may touch them together on
// Redis Cluster (Namespace "camgate"):
//
//	camgate:{camgate}:rev      string  the revision, +1 per commit
//	camgate:{camgate}:records  hash    "kind\x00id" → record JSON
//	camgate:{camgate}:changes  stream  entry id "<rev>-0", field m = mutations
//
// These keys have no TTL: they are the data. A commit is one Lua script:
// compare the revision, append the change, apply every mutation, bump the
// revision — all or nothing.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/authz"
)

// Store is an authz.Store and authz.Watcher on Redis. Configure the exported
// fields, then call Initialize. Safe for concurrent use.
type Store struct {
	// Client is the Redis connection (required). The Store does not close it:
	// other components share it.
	Client redis.UniversalClient
	// Namespace prefixes and hash-tags the keys. Default "camgate".
	Namespace string
	// FeedLength is about how many changes the stream keeps; a node further
	// behind than that reloads the whole model. Default 100000.
	FeedLength int64
	// Heartbeat is how long one read of the change feed blocks before the
	// watcher checks the revision counter; a read that gets no answer within
	// Heartbeat+HeartbeatSlack is a missed heartbeat (the feed is broken).
	// Default 1s.
	Heartbeat time.Duration
	// HeartbeatSlack: default 2s.
	HeartbeatSlack time.Duration
	// Logger. Default: discard.
	Logger *slog.Logger

	kRev, kRecords, kChanges string
	commit                   *redis.Script
}

// Initialize applies defaults.
func (s *Store) Initialize() error {
	if s.Client == nil {
		return errors.New("redisstore: Client is required")
	}
	if s.Namespace == "" {
		s.Namespace = "camgate"
	}
	if strings.ContainsAny(s.Namespace, "{}") {
		return fmt.Errorf("redisstore: namespace %q must not contain braces", s.Namespace)
	}
	if s.FeedLength <= 0 {
		s.FeedLength = 100000
	}
	if s.Heartbeat <= 0 {
		s.Heartbeat = time.Second
	}
	if s.HeartbeatSlack <= 0 {
		s.HeartbeatSlack = 2 * time.Second
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	p := s.Namespace + ":{" + s.Namespace + "}:"
	s.kRev, s.kRecords, s.kChanges = p+"rev", p+"records", p+"changes"
	s.commit = redis.NewScript(commitScript)
	return nil
}

// Keys returns the revision, records and change-feed keys (tests simulate
// lost changes by deleting feed entries).
func (s *Store) Keys() (rev, records, changes string) { return s.kRev, s.kRecords, s.kChanges }

// Close implements authz.Store. The client stays open (it is shared).
func (s *Store) Close() error { return nil }

// commitScript: KEYS rev, records, changes; ARGV expected rev, new rev, feed
// length, change payload, then (op, field, data) per mutation. The only write
// that can fail on valid input (XADD, e.g. a feed already past this revision)
// comes first, so a failed commit changes nothing.
const commitScript = `
local cur = redis.call('GET', KEYS[1]) or '0'
if cur ~= ARGV[1] then return -1 end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], ARGV[2] .. '-0', 'm', ARGV[4])
for i = 5, #ARGV, 3 do
  if ARGV[i] == 'p' then
    redis.call('HSET', KEYS[2], ARGV[i+1], ARGV[i+2])
  else
    redis.call('HDEL', KEYS[2], ARGV[i+1])
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`

// wireMutation is a mutation in the change feed; D nil deletes.
type wireMutation struct {
	K string `json:"k"`
	I string `json:"i"`
	D []byte `json:"d"`
}

func field(kind, id string) string { return kind + "\x00" + id }

// Commit implements authz.Store.
func (s *Store) Commit(ctx context.Context, expectRev uint64, muts []authz.Mutation) (uint64, error) {
	wire := make([]wireMutation, len(muts))
	args := make([]any, 0, 4+3*len(muts))
	newRev := expectRev + 1
	args = append(args, strconv.FormatUint(expectRev, 10), strconv.FormatUint(newRev, 10), s.FeedLength, nil)
	for i, m := range muts {
		if m.Kind == "" || strings.IndexByte(m.Kind, 0) >= 0 {
			return 0, fmt.Errorf("redisstore: commit: invalid kind %q", m.Kind)
		}
		wire[i] = wireMutation{K: m.Kind, I: m.ID, D: m.Data}
		if m.Data == nil {
			args = append(args, "d", field(m.Kind, m.ID), "")
		} else {
			args = append(args, "p", field(m.Kind, m.ID), m.Data)
		}
	}
	payload, err := json.Marshal(wire)
	if err != nil {
		return 0, fmt.Errorf("redisstore: commit: %w", err)
	}
	args[3] = payload
	res, err := s.commit.Run(ctx, s.Client, []string{s.kRev, s.kRecords, s.kChanges}, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: commit: %w", err)
	}
	if res < 0 {
		return 0, authz.ErrRevisionConflict
	}
	return newRev, nil
}

// Load implements authz.Store: the revision and every record read in one
// MULTI, so they belong to the same instant.
func (s *Store) Load(ctx context.Context) (uint64, []authz.Record, error) {
	var revCmd *redis.StringCmd
	var recCmd *redis.MapStringStringCmd
	_, err := s.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		revCmd = p.Get(ctx, s.kRev)
		recCmd = p.HGetAll(ctx, s.kRecords)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, nil, fmt.Errorf("redisstore: load: %w", err)
	}
	rev, err := parseRev(revCmd)
	if err != nil {
		return 0, nil, err
	}
	recs := make([]authz.Record, 0, len(recCmd.Val()))
	for f, v := range recCmd.Val() {
		kind, id, ok := strings.Cut(f, "\x00")
		if !ok {
			return 0, nil, fmt.Errorf("redisstore: load: malformed field %q", f)
		}
		recs = append(recs, authz.Record{Kind: kind, ID: id, Data: []byte(v)})
	}
	return rev, recs, nil
}

func parseRev(c *redis.StringCmd) (uint64, error) {
	v, err := c.Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: read revision: %w", err)
	}
	rev, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisstore: revision %q: %w", v, err)
	}
	return rev, nil
}

// decodeChange turns one feed entry into a change.
func decodeChange(msg redis.XMessage) (authz.Change, error) {
	revStr, seq, ok := strings.Cut(msg.ID, "-")
	rev, err := strconv.ParseUint(revStr, 10, 64)
	if !ok || seq != "0" || err != nil {
		return authz.Change{}, fmt.Errorf("malformed feed entry id %q", msg.ID)
	}
	raw, _ := msg.Values["m"].(string)
	var wire []wireMutation
	if err := json.Unmarshal([]byte(raw), &wire); err != nil {
		return authz.Change{}, fmt.Errorf("feed entry %s: %w", msg.ID, err)
	}
	c := authz.Change{Rev: rev, Mutations: make([]authz.Mutation, len(wire))}
	for i, w := range wire {
		c.Mutations[i] = authz.Mutation{Kind: w.K, ID: w.I, Data: w.D}
	}
	return c, nil
}

func feedID(rev uint64) string { return strconv.FormatUint(rev, 10) + "-0" }
