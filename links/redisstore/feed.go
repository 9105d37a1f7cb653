package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrFeedGap: link changes after the reader's revision cannot be read (the
// feed was trimmed past it, an entry is missing, or Redis lost data and the
// revision went back). The reader must treat every link as changed and
// continue from FeedRev.
var ErrFeedGap = errors.New("links: link change feed has a gap")

// feedBatch bounds one read of the feed.
const feedBatch = 512

// FeedRev is the feed's current revision (0 before the first link write).
// A node reads it before loading the links, then Watches from it.
func (s *Store) FeedRev(ctx context.Context) (uint64, error) {
	return parseRev(s.client.Get(ctx, s.kRev))
}

// Watch calls apply with the id of every link written after revision from,
// in revision order, until ctx ends or the feed breaks. It returns the last
// revision applied, so that after a Redis error (a lost connection) the
// caller resumes from it and misses nothing; ErrFeedGap means it cannot.
// Every Heartbeat without changes it checks that the revision counter
// agrees, so a feed that lost entries is noticed even when no new change
// comes.
func (s *Store) Watch(ctx context.Context, from uint64, apply func(id string)) (uint64, error) {
	last := from
	for {
		rctx, cancel := context.WithTimeout(ctx, s.Heartbeat+s.HeartbeatSlack)
		res, err := s.client.XRead(rctx, &redis.XReadArgs{
			Streams: []string{s.kChange, feedID(last)},
			Count:   feedBatch,
			Block:   s.Heartbeat,
		}).Result()
		cancel()
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		if errors.Is(err, redis.Nil) {
			if err := s.heartbeat(ctx, last); err != nil {
				return last, err
			}
			continue
		}
		if err != nil {
			return last, fmt.Errorf("links: read link change feed: %w", err)
		}
		for _, st := range res {
			for _, msg := range st.Messages {
				rev, err := entryRev(msg.ID)
				if err != nil {
					return last, fmt.Errorf("%w: %w", ErrFeedGap, err)
				}
				if rev != last+1 {
					return last, fmt.Errorf("%w: after revision %d the feed has %d", ErrFeedGap, last, rev)
				}
				id, _ := msg.Values["link"].(string)
				apply(id)
				last = rev
			}
		}
	}
}

// heartbeat: the counter must equal last, or be ahead with last+1 still in
// the feed (the next read returns it).
func (s *Store) heartbeat(ctx context.Context, last uint64) error {
	hctx, cancel := context.WithTimeout(ctx, s.HeartbeatSlack)
	defer cancel()
	rev, err := parseRev(s.client.Get(hctx, s.kRev))
	if err != nil {
		return err
	}
	switch {
	case rev == last:
		return nil
	case rev < last:
		return fmt.Errorf("%w: revision went back from %d to %d (Redis lost data?)", ErrFeedGap, last, rev)
	}
	next, err := s.client.XRangeN(hctx, s.kChange, "("+feedID(last), "+", 1).Result()
	if err != nil {
		return fmt.Errorf("links: link feed heartbeat: %w", err)
	}
	if len(next) == 0 || next[0].ID != feedID(last+1) {
		return fmt.Errorf("%w: revision %d is not in the feed (at %d)", ErrFeedGap, last+1, rev)
	}
	return nil
}

func parseRev(c *redis.StringCmd) (uint64, error) {
	v, err := c.Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("links: read link feed revision: %w", err)
	}
	rev, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("links: link feed revision %q: %w", v, err)
	}
	return rev, nil
}

func entryRev(id string) (uint64, error) {
	revStr, seq, ok := strings.Cut(id, "-")
	rev, err := strconv.ParseUint(revStr, 10, 64)
	if !ok || seq != "0" || err != nil {
		return 0, fmt.Errorf("malformed link feed entry id %q", id)
	}
	return rev, nil
}

func feedID(rev uint64) string { return strconv.FormatUint(rev, 10) + "-0" }
