package authz

import (
	"context"
	"slices"
	"sync"
)

// memStore is an in-memory Store: it checks the conformance suite itself and
// lets benchmarks measure the pipeline without fsync.
type memStore struct {
	mu   sync.Mutex
	rev  uint64
	recs map[string]Record
}

func (s *memStore) Load(context.Context) (uint64, []Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.recs {
		out = append(out, r)
	}
	return s.rev, out, nil
}

func (s *memStore) Commit(_ context.Context, expect uint64, muts []Mutation) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if expect != s.rev {
		return 0, ErrRevisionConflict
	}
	if s.recs == nil {
		s.recs = map[string]Record{}
	}
	for _, m := range muts {
		if m.Data == nil {
			delete(s.recs, m.Kind+"/"+m.ID)
		} else {
			s.recs[m.Kind+"/"+m.ID] = Record{Kind: m.Kind, ID: m.ID, Data: slices.Clone(m.Data)}
		}
	}
	s.rev++
	return s.rev, nil
}

func (s *memStore) Close() error { return nil }
