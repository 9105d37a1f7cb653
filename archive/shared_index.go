package archive

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// SharedIndex is a cluster's index of recorded segments: every node
// publishes the segments it holds, so that any node can list (and fetch
// from their holders) the segments of a camera recorded by several nodes
// over time (its owner changed). Only the listing is shared; the bytes
// stay on the node that recorded them, and so does retention.
type SharedIndex interface {
	// Publish adds segments this node holds; Unpublish removes them.
	Publish(ctx context.Context, camera string, segs []Segment) error
	Unpublish(ctx context.Context, camera string, segs []Segment) error
	// Held returns the segments of camera overlapping [start, end) that
	// other nodes hold, each with its Node.
	Held(ctx context.Context, camera string, start, end time.Time) ([]Segment, error)
	// Sync makes this node's entries match own (every camera's segments),
	// at start-up: what was recorded or deleted while the index was not
	// reachable.
	Sync(ctx context.Context, own OwnSegments) error
}

// OwnSegments is this node's own archive as Sync reads it: a week of 100
// cameras is 6 M segments, of which Sync mostly needs each camera's count
// and ends.
type OwnSegments interface {
	// Cameras lists the cameras with segments of ours.
	Cameras() []string
	// Ends is how many segments of ours camera has, and its first and
	// last (n > 0).
	Ends(camera string) (n int, first, last Segment)
	// All lists them, oldest first.
	All(camera string) []Segment
}

// RedisIndex is the SharedIndex in Redis. Per camera, a sorted set of the
// nodes that hold some of its segments (scored by when they last added
// one) and one sorted set per holding node whose members are the segments
// ("NAME/DURATION_US/SIZE/TRACKS_HEX", scored by start ms). A playlist of
// any length reads it in two round trips. Keys share the camera's hash tag
// (Redis Cluster), and every key expires TTL after its last write: by then
// retention has deleted what it lists.
type RedisIndex struct {
	// Client is the shared Redis connection (required; not closed here).
	Client redis.UniversalClient
	// Node is this node's id (required).
	Node string
	// Prefix of every key. Default "camgate:archive:".
	Prefix string
	// TTL of the keys: the archive retention plus a margin (required).
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Initialize checks the fields and applies defaults.
func (x *RedisIndex) Initialize() error {
	if x.Client == nil || x.Node == "" || x.TTL <= 0 {
		return errors.New("archive: RedisIndex needs Client, Node and TTL")
	}
	if x.Prefix == "" {
		x.Prefix = "camgate:archive:"
	}
	if x.Now == nil {
		x.Now = time.Now
	}
	return nil
}

func (x *RedisIndex) nodesKey(camera string) string { return x.Prefix + "{" + camera + "}:nodes" }
func (x *RedisIndex) heldKey(camera, node string) string {
	return x.Prefix + "{" + camera + "}:n:" + node
}

// Publish implements SharedIndex.
func (x *RedisIndex) Publish(ctx context.Context, camera string, segs []Segment) error {
	if len(segs) == 0 {
		return nil
	}
	_, err := x.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		x.add(ctx, p, camera, segs)
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive: publish segments of %s: %w", camera, err)
	}
	return nil
}

func (x *RedisIndex) add(ctx context.Context, p redis.Pipeliner, camera string, segs []Segment) {
	zs := make([]redis.Z, len(segs))
	for i, sg := range segs {
		zs[i] = redis.Z{Score: float64(sg.Start.UnixMilli()), Member: encodeShared(sg)}
	}
	key, nodes := x.heldKey(camera, x.Node), x.nodesKey(camera)
	p.ZAdd(ctx, key, zs...)
	p.PExpire(ctx, key, x.TTL)
	p.ZAdd(ctx, nodes, redis.Z{Score: float64(x.Now().UnixMilli()), Member: x.Node})
	p.PExpire(ctx, nodes, x.TTL)
}

// Unpublish implements SharedIndex.
func (x *RedisIndex) Unpublish(ctx context.Context, camera string, segs []Segment) error {
	if len(segs) == 0 {
		return nil
	}
	members := make([]any, len(segs))
	for i, sg := range segs {
		members[i] = encodeShared(sg)
	}
	if err := x.Client.ZRem(ctx, x.heldKey(camera, x.Node), members...).Err(); err != nil {
		return fmt.Errorf("archive: unpublish segments of %s: %w", camera, err)
	}
	return nil
}

// Held implements SharedIndex: the holding nodes, then for each the
// segment starting last before start and those starting in [start, end),
// pipelined.
func (x *RedisIndex) Held(ctx context.Context, camera string, start, end time.Time) ([]Segment, error) {
	since := strconv.FormatInt(x.Now().Add(-x.TTL).UnixMilli(), 10)
	nodes, err := x.Client.ZRangeByScore(ctx, x.nodesKey(camera), &redis.ZRangeBy{Min: since, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("archive: holders of %s: %w", camera, err)
	}
	nodes = removeString(nodes, x.Node)
	if len(nodes) == 0 {
		return nil, nil
	}
	// Scores are whole ms (floored): the ends are widened to them and the
	// answer filtered exactly.
	from := strconv.FormatInt(start.UnixMilli(), 10)
	to := strconv.FormatInt(end.Add(time.Millisecond-time.Nanosecond).UnixMilli(), 10)
	before := make([]*redis.StringSliceCmd, len(nodes))
	within := make([]*redis.StringSliceCmd, len(nodes))
	_, err = x.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range nodes {
			key := x.heldKey(camera, n)
			before[i] = p.ZRevRangeByScore(ctx, key, &redis.ZRangeBy{Max: "(" + from, Min: "-inf", Count: 1})
			within[i] = p.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: from, Max: to})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("archive: segments of %s: %w", camera, err)
	}
	var out []Segment
	for i, n := range nodes {
		for _, cmd := range []*redis.StringSliceCmd{before[i], within[i]} {
			for _, m := range cmd.Val() {
				sg, ok := decodeShared(m)
				if ok && sg.End().After(start) && sg.Start.Before(end) {
					sg.node = n
					out = append(out, sg)
				}
			}
		}
	}
	return out, nil
}

// Sync implements SharedIndex: a camera whose entries differ from what
// this node holds in count, first or last segment (what recording while
// Redis was unreachable, and retention meanwhile, change) is rewritten in
// one transaction; the others are left as they are (one pipelined read
// for all).
func (x *RedisIndex) Sync(ctx context.Context, own OwnSegments) error {
	cams := own.Cameras()
	if len(cams) == 0 {
		return nil
	}
	counts := make([]*redis.IntCmd, 0, len(cams))
	ends := make([]*redis.StringSliceCmd, 0, 2*len(cams))
	if _, err := x.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, cam := range cams {
			key := x.heldKey(cam, x.Node)
			counts = append(counts, p.ZCard(ctx, key))
			ends = append(ends, p.ZRange(ctx, key, 0, 0), p.ZRange(ctx, key, -1, -1))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("archive: sync the shared index: %w", err)
	}
	for i, cam := range cams {
		n, firstSeg, lastSeg := own.Ends(cam)
		first, last := ends[2*i].Val(), ends[2*i+1].Val()
		if n > 0 && counts[i].Val() == int64(n) && len(first) == 1 && len(last) == 1 &&
			first[0] == encodeShared(firstSeg) && last[0] == encodeShared(lastSeg) {
			continue
		}
		if _, err := x.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, x.heldKey(cam, x.Node))
			if segs := own.All(cam); len(segs) > 0 {
				x.add(ctx, p, cam, segs)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("archive: sync the shared index of %s: %w", cam, err)
		}
	}
	return nil
}

func removeString(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// encodeShared is a segment's member in the shared index.
func encodeShared(sg Segment) string {
	b := make([]byte, 0, segmentNameLen+48)
	b = append(b, SegmentName(sg.Start)...)
	b = append(b, '/')
	b = strconv.AppendInt(b, sg.Duration.Microseconds(), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, sg.Size, 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, sg.tracks, 16)
	return string(b)
}

// decodeShared parses a member of the shared index; anything malformed
// (another version, a hand edit) is not a segment.
func decodeShared(m string) (Segment, bool) {
	f := strings.Split(m, "/")
	if len(f) != 4 {
		return Segment{}, false
	}
	start, ok := parseSegmentName(f[0], time.UTC)
	if !ok {
		return Segment{}, false
	}
	dur, err1 := strconv.ParseInt(f[1], 10, 64)
	size, err2 := strconv.ParseInt(f[2], 10, 64)
	tracks, err3 := strconv.ParseUint(f[3], 16, 64)
	if err1 != nil || err2 != nil || err3 != nil || dur <= 0 || dur > int64(24*time.Hour/time.Microsecond) || size <= 0 {
		return Segment{}, false
	}
	return Segment{Start: start, Duration: time.Duration(dur) * time.Microsecond, Size: size, stem: start.UnixMicro(), tracks: tracks}, true
}
