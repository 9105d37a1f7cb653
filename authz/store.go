package authz

import (
	"context"
	"errors"
)

// Record is one persisted object: a kind ("grants", "sites", ...), an id unique
// within the kind, and its JSON.
type Record struct {
	Kind string
	ID   string
	Data []byte
}

// Mutation creates or replaces a record, or deletes it when Data is nil.
type Mutation struct {
	Kind string
	ID   string
	Data []byte
}

// ErrRevisionConflict is returned by Store.Commit when the store's revision is
// not the expected one: another writer (another node) committed first. The
// caller reloads and retries.
var ErrRevisionConflict = errors.New("authz: store revision conflict")

// Store persists the permission model. Every backend (embedded bbolt, Redis)
// implements the same semantics, checked by the conformance suite in
// authz/storetest:
//   - the revision starts at 0 for an empty store and grows by exactly 1 per
//     successful Commit;
//   - Commit is atomic (all mutations or none) and durable before it returns;
//   - Load returns the revision and every record as of one instant.
//
// A shared backend used by several nodes also implements Watcher, so each
// node keeps its in-memory model in step with the others' commits.
type Store interface {
	Load(ctx context.Context) (rev uint64, records []Record, err error)
	Commit(ctx context.Context, expectRev uint64, muts []Mutation) (newRev uint64, err error)
	Close() error
}

// Change is one committed revision as a shared store's change feed delivers
// it: the same mutations the committing node passed to Commit.
type Change struct {
	Rev       uint64
	Mutations []Mutation
}

// ErrFeedGap means a change feed cannot continue in revision order from the
// asked position: a revision is missing, the feed was trimmed past it, or the
// store's revision went back (a store restarted without its data). The
// Service then reloads the whole model.
var ErrFeedGap = errors.New("authz: change feed gap")

// Watcher is the change feed of a store shared by several nodes. The Service
// follows it when its Store implements it: changes of other nodes are applied
// to the local model in revision order, exactly like local commits.
type Watcher interface {
	// Watch calls apply with every change after revision from, in order,
	// until ctx ends (it returns ctx.Err()), apply fails (its error), the
	// store cannot be reached or stops answering within its heartbeat (an
	// error that is not ErrFeedGap), or the feed cannot continue in order
	// (an error wrapping ErrFeedGap).
	Watch(ctx context.Context, from uint64, apply func(Change) error) error
	// Changes returns the changes after revision from up to the current one,
	// in order, or an error wrapping ErrFeedGap when they are not all kept.
	Changes(ctx context.Context, from uint64) ([]Change, error)
}
