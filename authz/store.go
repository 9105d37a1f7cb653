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
// A shared backend used by several nodes would also offer change events
// (revision + mutations) so each node keeps its in-memory model in step; the
// Service only needs Load and Commit from a single-node store.
type Store interface {
	Load(ctx context.Context) (rev uint64, records []Record, err error)
	Commit(ctx context.Context, expectRev uint64, muts []Mutation) (newRev uint64, err error)
	Close() error
}
