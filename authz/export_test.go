package authz

import "time"

// What the external tests (package authz_test, which drive the JSON
// transport in authz/jsonapi and so cannot live inside package authz) need
// of the internals.

// MemStore is the in-memory test store.
type MemStore = memStore

// RedactedPassword is the placeholder a GET shows for a stored password.
const RedactedPassword = redactedPassword

// NumActions is the number of actions.
const NumActions = numActions

// RevForTest is the revision of the model the service holds.
func (s *Service) RevForTest() uint64 { return s.rev }

// EvaluateFreshForTest decides without any cache (footage -1: none).
func (s *Service) EvaluateFreshForTest(subject, device string, a Action, now time.Time, footage int64) Decision {
	return s.evaluateFresh(subject, device, a, now, footage)
}

// AuditForTest returns every audit entry kept, oldest first.
func (s *Service) AuditForTest() []AuditEntry {
	entries, _ := s.audit.page(0, 1<<30, func(*AuditEntry) bool { return true })
	return entries
}

// PutModelForTest puts a record straight into the in-memory model, with
// no validation, commit or invalidation: for building large fixtures.
func (s *Service) PutModelForTest(kind string, obj any) error {
	id := *objID(obj)
	if g, ok := obj.(*Grant); ok {
		c, err := compileGrant(g)
		if err != nil {
			return err
		}
		obj = c
	}
	s.m.put(kind, id, obj)
	return nil
}
