package events

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is the shared feed: one Redis stream that every node appends
// to and tails (XREAD BLOCK), so all nodes see one feed in one order. The
// key's TTL is the retention, renewed by each append; old entries are
// trimmed by time (XTRIM MINID) and by MaxLen.
type RedisStore struct {
	Client redis.UniversalClient
	// Key is the stream (default "camgate:events").
	Key string
	// MaxLen caps the stream (default 100000, approximate trimming).
	MaxLen int64
	// TTL is the key's lifetime after the last append (default 7 days).
	TTL time.Duration
	// Block bounds one XREAD BLOCK of Wait (default 5 s). Negative: Wait
	// blocks until an event arrives (XREAD BLOCK 0), so an idle node sends
	// Redis nothing; then Tail must be a connection of its own, which
	// Unblock closes.
	Block time.Duration
	// Tail is the client Wait reads with (default Client).
	Tail redis.UniversalClient
}

// Initialize applies the defaults.
func (r *RedisStore) Initialize() error {
	if r.Client == nil {
		return errors.New("events: RedisStore.Client is required")
	}
	if r.Key == "" {
		r.Key = "camgate:events"
	}
	if r.MaxLen <= 0 {
		r.MaxLen = 100000
	}
	if r.TTL <= 0 {
		r.TTL = 7 * 24 * time.Hour
	}
	if r.Block == 0 {
		r.Block = 5 * time.Second
	}
	if r.Tail == nil {
		if r.Block < 0 {
			return errors.New("events: a RedisStore that blocks until an event arrives needs a Tail client of its own")
		}
		r.Tail = r.Client
	}
	return nil
}

// Append implements Store.
func (r *RedisStore) Append(ctx context.Context, ev *Event) error {
	ev.ID = ""
	v, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	var add *redis.StringCmd
	_, err = r.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		add = p.XAdd(ctx, &redis.XAddArgs{Stream: r.Key, MaxLen: r.MaxLen, Approx: true, Values: []string{"e", string(v)}})
		p.Expire(ctx, r.Key, r.TTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("events: append: %w", err)
	}
	ev.ID = add.Val()
	return nil
}

func decodeEntries(msgs []redis.XMessage) []Event {
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		raw, _ := m.Values["e"].(string)
		var ev Event
		if json.Unmarshal([]byte(raw), &ev) != nil {
			continue
		}
		ev.ID = m.ID
		out = append(out, ev)
	}
	return out
}

// After implements Store.
func (r *RedisStore) After(ctx context.Context, after string, limit int) ([]Event, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := r.Client.XRangeN(ctx, r.Key, start, "+", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("events: read: %w", err)
	}
	return decodeEntries(msgs), nil
}

// Wait implements Store.
func (r *RedisStore) Wait(ctx context.Context, after string, limit int) ([]Event, error) {
	if after == "" {
		after = "0-0"
	}
	block := max(r.Block, 0) // XREAD BLOCK 0: until an entry arrives
	res, err := r.Tail.XRead(ctx, &redis.XReadArgs{Streams: []string{r.Key, after}, Count: int64(limit), Block: block}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, fmt.Errorf("events: tail: %w", err)
	}
	var out []Event
	for _, st := range res {
		out = append(out, decodeEntries(st.Messages)...)
	}
	return out, nil
}

// Last implements Store.
func (r *RedisStore) Last(ctx context.Context) (string, error) {
	msgs, err := r.Client.XRevRangeN(ctx, r.Key, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("events: read: %w", err)
	}
	if len(msgs) == 0 {
		return "", nil
	}
	return msgs[0].ID, nil
}

// Prune implements Store: events appended before `before` go.
func (r *RedisStore) Prune(ctx context.Context, before time.Time) error {
	// Entry ids are the append times (Redis's clock, in ms): exact
	// trimming by id drops what was stored before `before`.
	return r.Client.XTrimMinID(ctx, r.Key, strconv.FormatInt(before.UnixMilli(), 10)+"-0").Err()
}

func parseStreamID(s string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// Compare implements Store.
func (r *RedisStore) Compare(x, y string) int {
	xm, xs, _ := parseStreamID(x)
	ym, ys, _ := parseStreamID(y)
	switch {
	case xm != ym:
		return cmp.Compare(xm, ym)
	default:
		return cmp.Compare(xs, ys)
	}
}

// ParseCursor implements Store.
func (r *RedisStore) ParseCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	ms, seq, ok := parseStreamID(s)
	if !ok {
		return "", ErrBadCursor
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq, 10), nil
}

// Unblock ends a Wait blocked forever: it closes Tail when Tail is a
// client of its own.
func (r *RedisStore) Unblock() {
	if r.Tail != nil && r.Tail != r.Client {
		_ = r.Tail.Close()
	}
}

// Close implements Store: Tail when it is the store's own (Client is
// the caller's).
func (r *RedisStore) Close() error {
	r.Unblock()
	return nil
}
