package authz

// NewMemStoreForTest exposes the in-memory test store to the external
// conformance test, which checks the suite against a second backend.
func NewMemStoreForTest() Store { return &memStore{} }
