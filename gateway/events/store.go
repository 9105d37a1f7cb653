package events

import (
	"context"
	"time"
)

// Store keeps the feed. Implementations are safe for concurrent use.
type Store interface {
	// Append stores ev, assigning ev.ID (later events get greater IDs).
	Append(ctx context.Context, ev *Event) error
	// After returns up to limit events with an ID greater than after
	// ("" is before the oldest kept), oldest first.
	After(ctx context.Context, after string, limit int) ([]Event, error)
	// Wait blocks until events after `after` exist and returns the first
	// of them (up to limit), or returns nil after a while with nothing new
	// (callers loop), or ctx's error.
	Wait(ctx context.Context, after string, limit int) ([]Event, error)
	// Last is the ID of the newest event ("" when none).
	Last(ctx context.Context) (string, error)
	// Prune drops events older than before.
	Prune(ctx context.Context, before time.Time) error
	// Compare orders two IDs (-1, 0, 1).
	Compare(a, b string) int
	// ParseCursor validates a client's cursor (ErrBadCursor).
	ParseCursor(s string) (string, error)
	Close() error
}
