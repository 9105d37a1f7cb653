package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/authz"
)

// feedBatch bounds one read of the change feed.
const feedBatch = 512

// Watch implements authz.Watcher. Unlike Pub/Sub, the stream is read by
// revision, so a transparent reconnect of the client loses nothing; what can
// still go wrong — a missing revision, a trimmed feed, a store whose revision
// went back, a Redis that stops answering — ends Watch with an error.
func (s *Store) Watch(ctx context.Context, from uint64, apply func(authz.Change) error) error {
	last := from
	for {
		rctx, cancel := context.WithTimeout(ctx, s.Heartbeat+s.HeartbeatSlack)
		res, err := s.Client.XRead(rctx, &redis.XReadArgs{
			Streams: []string{s.kChanges, feedID(last)},
			Count:   feedBatch,
			Block:   s.Heartbeat,
		}).Result()
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, redis.Nil) {
			if err := s.heartbeat(ctx, last); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("redisstore: read change feed: %w", err)
		}
		for _, st := range res {
			for _, msg := range st.Messages {
				c, err := decodeChange(msg)
				if err != nil {
					return fmt.Errorf("%w: %w", authz.ErrFeedGap, err)
				}
				if c.Rev != last+1 {
					return fmt.Errorf("%w: after revision %d the feed has %d", authz.ErrFeedGap, last, c.Rev)
				}
				if err := apply(c); err != nil {
					return err
				}
				last = c.Rev
			}
		}
	}
}

// heartbeat runs when the feed had nothing new for a Heartbeat: the revision
// counter must agree. A counter ahead of us whose next change is not in the
// feed (trimmed or deleted), or a counter behind us (Redis came back without
// its data), is a gap.
func (s *Store) heartbeat(ctx context.Context, last uint64) error {
	hctx, cancel := context.WithTimeout(ctx, s.HeartbeatSlack)
	defer cancel()
	rev, err := parseRev(s.Client.Get(hctx, s.kRev))
	if err != nil {
		return fmt.Errorf("redisstore: heartbeat: %w", err)
	}
	switch {
	case rev == last:
		return nil
	case rev < last:
		s.Logger.Error("redis store revision went back: Redis lost data (restarted without persistence?)",
			"had", last, "now", rev)
		return fmt.Errorf("%w: store revision went back from %d to %d", authz.ErrFeedGap, last, rev)
	}
	next, err := s.Client.XRangeN(hctx, s.kChanges, "("+feedID(last), "+", 1).Result()
	if err != nil {
		return fmt.Errorf("redisstore: heartbeat: %w", err)
	}
	if len(next) == 0 || next[0].ID != feedID(last+1) {
		return fmt.Errorf("%w: revision %d is not in the feed (store at %d)", authz.ErrFeedGap, last+1, rev)
	}
	return nil // the next read returns it
}

// Changes implements authz.Watcher: the revision and the feed after from,
// read in one MULTI.
func (s *Store) Changes(ctx context.Context, from uint64) ([]authz.Change, error) {
	var revCmd *redis.StringCmd
	var rangeCmd *redis.XMessageSliceCmd
	_, err := s.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		revCmd = p.Get(ctx, s.kRev)
		rangeCmd = p.XRangeN(ctx, s.kChanges, "("+feedID(from), "+", feedBatch)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: changes: %w", err)
	}
	rev, err := parseRev(revCmd)
	if err != nil {
		return nil, err
	}
	if rev < from {
		return nil, fmt.Errorf("%w: store revision %d is behind %d", authz.ErrFeedGap, rev, from)
	}
	out := make([]authz.Change, 0, len(rangeCmd.Val()))
	last := from
	for _, msg := range rangeCmd.Val() {
		c, err := decodeChange(msg)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", authz.ErrFeedGap, err)
		}
		if c.Rev != last+1 {
			return nil, fmt.Errorf("%w: after revision %d the feed has %d", authz.ErrFeedGap, last, c.Rev)
		}
		out = append(out, c)
		last = c.Rev
	}
	if last != rev {
		return nil, fmt.Errorf("%w: the feed ends at %d, the store is at %d", authz.ErrFeedGap, last, rev)
	}
	return out, nil
}
