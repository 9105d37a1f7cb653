package links

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"
)

// Decide answers whether link linkID lets its holder do action on device at
// now (footage: the recording time of an archive segment, nil otherwise):
// the link exists, is enabled and not deleted, is inside its window, is for
// this device, carries the action, the footage is inside its footage window,
// and its creator may still share the device (DESIGN §4 rule 11).
//
// The registry state comes from the in-process snapshot (no I/O, no
// allocation on a hit); a link this node has not seen is read from the store
// once. ValidUntil is the next instant the answer changes by time alone.
func (s *Service) Decide(linkID, device, action string, now time.Time, footage *time.Time) Decision {
	l, err := s.link(linkID)
	switch {
	case err != nil:
		return Decision{Reason: ReasonUnavailable}
	case l == nil:
		return Decision{Reason: ReasonUnknown}
	case l.Deleted:
		return Decision{Reason: ReasonDeleted}
	case !l.Enabled:
		return Decision{Reason: ReasonDisabled}
	case now.Before(l.NotBefore):
		return Decision{Reason: ReasonNotYetActive, ValidUntil: l.NotBefore}
	case !now.Before(l.NotAfter):
		return Decision{Reason: ReasonExpired}
	case l.Device != device:
		return Decision{Reason: ReasonOtherDevice}
	case !l.hasAction(action):
		return Decision{Reason: ReasonAction, ValidUntil: l.NotAfter}
	case footage != nil && !inFootage(l, *footage):
		return Decision{Reason: ReasonFootage, ValidUntil: l.NotAfter}
	case !s.Policy.CreatorMay(l.Creator, device, "share", now), !s.Policy.CreatorMay(l.Creator, device, action, now):
		return Decision{Reason: ReasonCreatorLost}
	}
	return Decision{Allowed: true, Reason: ReasonAllowed, ValidUntil: l.NotAfter}
}

func inFootage(l *Link, t time.Time) bool {
	if l.FootageFrom != nil && t.Before(*l.FootageFrom) {
		return false
	}
	if l.FootageTo != nil && t.After(*l.FootageTo) {
		return false
	}
	return true
}

// link returns the snapshot's link (nil when it does not exist), reading
// the store on a miss. The returned value must not be modified.
func (s *Service) link(id string) (*Link, error) {
	if l, ok := (*s.links.Load())[id]; ok {
		return l, nil
	}
	s.linksMu.Lock()
	defer s.linksMu.Unlock()
	if l, ok := (*s.links.Load())[id]; ok {
		return l, nil // loaded by a concurrent miss
	}
	l, err := s.Store.GetLink(s.ctx, id)
	if errors.Is(err, ErrNotFound) {
		s.setLocked(id, nil) // remember the absence; Invalidate forgets it
		return nil, nil
	}
	if err != nil {
		s.Logger.Warn("reading a link from the store", "link", id, "error", err)
		return nil, fmt.Errorf("links: read link %s: %w", id, err)
	}
	s.setLocked(id, &l)
	return &l, nil
}

// set publishes a new version of one link (nil: known absent).
func (s *Service) set(id string, l *Link) {
	s.linksMu.Lock()
	defer s.linksMu.Unlock()
	s.setLocked(id, l)
}

func (s *Service) setLocked(id string, l *Link) {
	m := maps.Clone(*s.links.Load())
	m[id] = l
	s.links.Store(&m)
}

// forget drops a link from the snapshot, so the next use reads the store.
func (s *Service) forget(id string) {
	s.linksMu.Lock()
	defer s.linksMu.Unlock()
	m := maps.Clone(*s.links.Load())
	delete(m, id)
	s.links.Store(&m)
}

// Forget drops this node's cached copy of link id (the next use reads the
// store) without telling OnChange: for a change read from the shared
// store's link feed, whose sessions the caller re-checks itself.
func (s *Service) Forget(id string) { s.forget(id) }

// Reload replaces every cached link with what the store holds now: for a
// node that cannot tell which links changed, e.g. after a gap in the shared
// store's link feed. The caller re-checks the sessions. When the store
// cannot be read, the cache is emptied all the same (each link is read
// again at its next use, nothing stale is served) and the error returned.
func (s *Service) Reload() error {
	all, err := s.Store.ListLinks(s.ctx)
	m := make(map[string]*Link, len(all))
	for i := range all {
		m[all[i].ID] = &all[i]
	}
	s.linksMu.Lock()
	s.links.Store(&m)
	s.linksMu.Unlock()
	return err
}

// Invalidate is called when another node changed link id (the shared
// store's change feed): the next use reads the store again, and OnChange
// lets the gateway re-check that link's sessions here.
func (s *Service) Invalidate(id string) {
	s.forget(id)
	s.OnChange(id)
}

// LinksByCreator lists the ids of the live (not deleted) links a creator
// made, so the gateway can re-check their sessions when the creator's
// permissions change.
func (s *Service) LinksByCreator(creator string) []string {
	var out []string
	for id, l := range *s.links.Load() {
		if l != nil && !l.Deleted && l.Creator == creator {
			out = append(out, id)
		}
	}
	return out
}

// AcquireViewer counts one more concurrent session of a link and returns
// the function that ends it (idempotent). Over the link's max_viewers it
// returns ErrTooManyViewers (the edges answer 429 Too Many Requests: the
// link is valid, but full for now). Counts are per node for now; the Redis
// issue shares them.
func (s *Service) AcquireViewer(linkID string) (release func(), err error) {
	l, err := s.link(linkID)
	if err != nil {
		return nil, err
	}
	if l == nil || l.Deleted {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, linkID)
	}
	s.viewersMu.Lock()
	defer s.viewersMu.Unlock()
	if l.MaxViewers > 0 && s.viewers[linkID] >= l.MaxViewers {
		return nil, fmt.Errorf("%w (max_viewers %d)", ErrTooManyViewers, l.MaxViewers)
	}
	s.viewers[linkID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.viewersMu.Lock()
			defer s.viewersMu.Unlock()
			if s.viewers[linkID]--; s.viewers[linkID] <= 0 {
				delete(s.viewers, linkID)
			}
		})
	}, nil
}

// Viewers returns the number of open sessions of a link on this node.
func (s *Service) Viewers(linkID string) int {
	s.viewersMu.Lock()
	defer s.viewersMu.Unlock()
	return s.viewers[linkID]
}
