package links

import "context"

// Store persists links and signing keys. Every backend (the embedded bbolt
// file, Redis later) has the same semantics, checked by the conformance suite
// in links/linkstest:
//   - UpdateLink and UpdateKey are atomic read-modify-writes: fn sees the
//     current record (nil when absent) and returns what to store (nil
//     deletes it; returning cur unchanged rewrites it); an error from fn
//     aborts and is returned unwrapped so callers can errors.Is it. A
//     backend may call fn more than once (optimistic retries), so fn must
//     not have side effects. The change is durable before the call returns.
//   - Get/List return copies; callers may modify them.
//   - GetLink of an absent id returns ErrNotFound.
type Store interface {
	GetLink(ctx context.Context, id string) (Link, error)
	ListLinks(ctx context.Context) ([]Link, error)
	UpdateLink(ctx context.Context, id string, fn func(cur *Link) (*Link, error)) error
	ListKeys(ctx context.Context) ([]SigningKey, error)
	UpdateKey(ctx context.Context, kid string, fn func(cur *SigningKey) (*SigningKey, error)) error
	Close() error
}
