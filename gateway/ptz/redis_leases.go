package ptz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisLeases is a LeaseStore shared by several gateway nodes: one key per
// camera (Prefix + camera) holding the lease as JSON, expiring with the lease
// (key TTL = lease TTL, so a lapsed lease also disappears). TryAcquire reads
// the lease, decides with the same rules as MemoryLeases (decideLease) and
// writes with a compare-and-set script that succeeds only if the key still
// holds what was read; a lost race is retried against the new value.
type RedisLeases struct {
	// Client is the shared Redis connection (required; not closed here).
	Client redis.UniversalClient
	// Prefix of the keys. Default "camgate:ptz:lease:".
	Prefix string
}

// NewRedisLeases returns a lease store on c with the default key prefix.
func NewRedisLeases(c redis.UniversalClient) *RedisLeases {
	return &RedisLeases{Client: c, Prefix: "camgate:ptz:lease:"}
}

// casScript: KEYS lease; ARGV expected value ("" = absent), new value ("" =
// delete), TTL in ms. Returns 1 when swapped, 0 when the key changed.
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`)

// maxCASAttempts bounds retries when other nodes keep changing the lease.
const maxCASAttempts = 16

func (r *RedisLeases) key(camera string) string {
	if r.Prefix == "" {
		return "camgate:ptz:lease:" + camera
	}
	return r.Prefix + camera
}

// current reads the camera's lease: its raw value ("" when none) and decoded.
func (r *RedisLeases) current(ctx context.Context, camera string) (string, Lease, bool, error) {
	raw, err := r.Client.Get(ctx, r.key(camera)).Result()
	if errors.Is(err, redis.Nil) {
		return "", Lease{}, false, nil
	}
	if err != nil {
		return "", Lease{}, false, fmt.Errorf("ptz: read lease: %w", err)
	}
	var l Lease
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		return raw, Lease{}, false, nil // unreadable: treat as free, overwrite
	}
	return raw, l, true, nil
}

// TryAcquire implements LeaseStore.
func (r *RedisLeases) TryAcquire(ctx context.Context, camera string, h Holder, ttl time.Duration, now time.Time) (Lease, error) {
	for range maxCASAttempts {
		raw, cur, ok, err := r.current(ctx, camera)
		if err != nil {
			return Lease{}, err
		}
		l, err := decideLease(cur, ok, camera, h, ttl, now)
		if err != nil {
			return Lease{}, err
		}
		data, err := json.Marshal(l)
		if err != nil {
			return Lease{}, fmt.Errorf("ptz: encode lease: %w", err)
		}
		swapped, err := casScript.Run(ctx, r.Client, []string{r.key(camera)}, raw, data, max(ttl.Milliseconds(), 1)).Int()
		if err != nil {
			return Lease{}, fmt.Errorf("ptz: write lease: %w", err)
		}
		if swapped == 1 {
			return l, nil
		}
	}
	return Lease{}, errors.New("ptz: lease contended, try again")
}

// Release implements LeaseStore.
func (r *RedisLeases) Release(ctx context.Context, camera string, h Holder) error {
	for range maxCASAttempts {
		raw, cur, ok, err := r.current(ctx, camera)
		if err != nil || !ok || !cur.Holder.Same(h) {
			return err
		}
		swapped, err := casScript.Run(ctx, r.Client, []string{r.key(camera)}, raw, "", 0).Int()
		if err != nil {
			return fmt.Errorf("ptz: release lease: %w", err)
		}
		if swapped == 1 {
			return nil
		}
	}
	return errors.New("ptz: lease contended, try again")
}
