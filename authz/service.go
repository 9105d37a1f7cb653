package authz

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Service is the authorization service: the model, its store, the decision
// cache and the invalidation bus. Configure the exported fields, then call
// Initialize; Close releases it.
//
// Locking: writeMu serializes writers (API writes and state changes), so a
// write validates against a model no one else changes; mu guards the model
// (evaluations hold the read lock, applying a committed write the write lock).
// The store commit (an fsync) happens outside mu, so cold evaluations are not
// blocked by disk writes.
type Service struct {
	// DataDir holds camgate.db when Store is nil. Required in that case.
	DataDir string
	// Store persists the model. Default: a BoltStore at DataDir/camgate.db.
	Store Store
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// TemporaryAccess is how long installers and companies of a site get
	// access to a newly added camera. Default 8h.
	TemporaryAccess time.Duration
	// Logger. Default: discard.
	Logger *slog.Logger
	// AdminKeys are bootstrap admin keys (root: every section).
	AdminKeys []string
	// CacheEntries bounds the L1 decision cache. Default 1<<20.
	CacheEntries int
	// AuditEntries is how many audit entries are kept (in memory for paging,
	// and in the store when it implements AuditStore). Default 10000.
	AuditEntries int
	// OutageGrace bounds how long decisions cached before a store outage
	// still count (see Healthy). Default 5m. SetOutageGrace changes it
	// while running.
	OutageGrace time.Duration

	ownStore bool
	writeMu  sync.Mutex
	mu       sync.RWMutex
	m        *model
	rev      uint64
	cache    *decisionCache
	audit    *auditLog
	rootKeys [][32]byte

	subsMu sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool

	// outageSince is when the shared store's change feed broke (unix ns; 0:
	// following). Read on every Check, so an atomic rather than under mu.
	outageSince  atomic.Int64
	outageGrace  atomic.Int64 // a time.Duration: OutageGrace, then SetOutageGrace's
	followCancel context.CancelFunc
	followDone   chan struct{}
}

// CacheStats returns how many decisions the L1 cache answered (hits) and
// how many needed an evaluation (misses), for metrics.
func (s *Service) CacheStats() (hits, misses uint64) { return s.cache.stats() }

// Initialize applies defaults, opens the store and loads the model.
func (s *Service) Initialize() error {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.TemporaryAccess <= 0 {
		s.TemporaryAccess = 8 * time.Hour
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.CacheEntries <= 0 {
		s.CacheEntries = 1 << 20
	}
	if s.AuditEntries <= 0 {
		s.AuditEntries = 10000
	}
	if s.OutageGrace <= 0 {
		s.OutageGrace = 5 * time.Minute
	}
	s.outageGrace.Store(int64(s.OutageGrace))
	for i, k := range s.AdminKeys {
		if len(k) < 16 {
			return fmt.Errorf("authz: admin key %d: shorter than 16 characters", i)
		}
		s.rootKeys = append(s.rootKeys, sha256.Sum256([]byte(k)))
	}
	if s.Store == nil {
		if s.DataDir == "" {
			return errors.New("authz: DataDir or Store is required")
		}
		if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
			return fmt.Errorf("authz: data dir: %w", err)
		}
		st, err := OpenBoltStore(filepath.Join(s.DataDir, "camgate.db"))
		if err != nil {
			return err
		}
		s.Store, s.ownStore = st, true
	}
	s.cache = newDecisionCache(s.CacheEntries)
	as, _ := s.Store.(AuditStore)
	s.audit = newAuditLog(s.AuditEntries, as)
	s.subs = map[*subscriber]struct{}{}
	err := s.load(context.Background())
	if err == nil {
		err = s.audit.restore(context.Background())
	}
	go s.audit.run(func(err error) { s.Logger.Error("authz audit write", "error", err) })
	if err != nil {
		s.Close()
		return err
	}
	if w, ok := s.Store.(Watcher); ok {
		s.startFollowing(w)
	}
	return nil
}

// load replaces the model with the store's content.
func (s *Service) load(ctx context.Context) error {
	rev, recs, err := s.Store.Load(ctx)
	if err != nil {
		return err
	}
	m := newModel()
	for _, r := range recs {
		obj, err := decodeRecord(r.Kind, r.Data)
		if err != nil {
			return fmt.Errorf("authz: load %s/%s: %w", r.Kind, r.ID, err)
		}
		m.put(r.Kind, r.ID, obj)
	}
	s.mu.Lock()
	s.m, s.rev = m, rev
	s.cache.rev.Add(1)
	s.cache.invalidate(&Invalidation{All: true})
	s.mu.Unlock()
	// The store answered: an outage is over before the sessions are
	// re-checked below. Cleared after, a re-check in between found the
	// cache emptied and the outage still on, answered "store unavailable"
	// and ended sessions that were allowed all along.
	if since := s.outageSince.Swap(0); since != 0 {
		s.Logger.Info("authz store reachable again", "outage", time.Since(nsTime(since)).Round(time.Millisecond))
	}
	// Whatever changed since the previous model is unknown: every session is
	// re-checked (at Initialize there are no subscribers yet).
	s.publish(Invalidation{Rev: rev, All: true})
	s.Logger.Info("authz model loaded", "rev", rev, "records", len(recs))
	return nil
}

// Close stops subscribers and closes the store if the Service opened it.
func (s *Service) Close() {
	s.subsMu.Lock()
	subs, alreadyClosed := s.subs, s.closed
	s.subs, s.closed = nil, true
	s.subsMu.Unlock()
	for sub := range subs {
		sub.stop()
	}
	if s.followCancel != nil && !alreadyClosed {
		s.followCancel()
		<-s.followDone
	}
	if s.audit != nil && !alreadyClosed {
		s.audit.stop() // flushes pending entries before the store closes
	}
	if s.ownStore && !alreadyClosed && s.Store != nil {
		if err := s.Store.Close(); err != nil {
			s.Logger.Warn("authz store close", "error", err)
		}
	}
}

// Check answers one action for subject on device at now. A cache hit does
// not allocate.
func (s *Service) Check(subject, device string, a Action, now time.Time) Decision {
	return s.check(subject, device, a, now, -1)
}

// CheckFootage is Check for archive access to footage recorded at footage:
// grants with footage_within reach back only that far.
func (s *Service) CheckFootage(subject, device string, a Action, now, footage time.Time) Decision {
	return s.check(subject, device, a, now, footage.UnixNano())
}

func (s *Service) check(subject, device string, a Action, now time.Time, footage int64) Decision {
	if a == 0 || a&(a-1) != 0 || a > ActionAll {
		return Decision{Reason: "invalid_action: not a single action"}
	}
	if since := s.outageSince.Load(); since != 0 {
		return s.checkDuringOutage(subject, device, a, now, footage, since)
	}
	return s.entry(subject, device, now).decision(a, now.UnixNano(), footage)
}

func (s *Service) entry(subject, device string, now time.Time) *entry {
	ns := now.UnixNano()
	if e := s.cache.get(subject, device, ns); e != nil {
		return e
	}
	s.mu.RLock()
	e := s.m.evaluate(subject, device, now)
	rev := s.cache.stamp(e, subject, device)
	s.mu.RUnlock()
	s.cache.put(subject, device, e, rev)
	return e
}

// evaluateFresh bypasses the cache (tests compare it with cached answers).
func (s *Service) evaluateFresh(subject, device string, a Action, now time.Time, footage int64) Decision {
	s.mu.RLock()
	e := s.m.evaluate(subject, device, now)
	s.mu.RUnlock()
	return e.decision(a, now.UnixNano(), footage)
}

// Actions returns every action allowed now (rule 12 applied) and the earliest
// ValidUntil among them and the denied ones (zero: no time limit).
func (s *Service) Actions(subject, device string, now time.Time) (Action, time.Time) {
	ns := now.UnixNano()
	var e *entry
	limit := s.outageLimit()
	if limit != 0 {
		if e = s.cache.get(subject, device, ns); e == nil || ns >= limit {
			return 0, time.Time{}
		}
	} else {
		e = s.entry(subject, device, now)
	}
	var allowed Action
	var vu int64
	for i := range numActions {
		d := e.decision(Action(1)<<i, ns, -1)
		if d.Allowed {
			allowed |= Action(1) << i
		}
		if !d.ValidUntil.IsZero() {
			vu = minNS(vu, d.ValidUntil.UnixNano())
		}
	}
	if limit != 0 {
		vu = minNS(vu, limit)
	}
	return allowed, nsTime(vu)
}

// Site returns a copy of site id.
func (s *Service) Site(id string) (Site, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.m.sites[id]
	if st == nil {
		return Site{}, false
	}
	c := *st
	c.PrivacyManagers = slices.Clone(st.PrivacyManagers)
	return c, true
}

// Device returns a device (PTZ password included: the gateway needs it).
func (s *Service) Device(id string) (Device, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.m.devices[id]
	if d == nil {
		return Device{}, false
	}
	return copyDevice(d), true
}

// Devices returns every device sorted by id.
func (s *Service) Devices() []Device {
	s.mu.RLock()
	out := make([]Device, 0, len(s.m.devices))
	for _, d := range s.m.devices {
		out = append(out, copyDevice(d))
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func copyDevice(d *Device) Device {
	c := *d
	if d.PTZ != nil {
		p := *d.PTZ
		c.PTZ = &p
	}
	return c
}

// Subject returns a subject.
func (s *Service) Subject(id string) (Subject, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	x := s.m.subjects[id]
	if x == nil {
		return Subject{}, false
	}
	return *x, true
}

// Authenticate maps an admin key to a Caller: a bootstrap key is root, a key
// returned when an admin was created is that admin.
func (s *Service) Authenticate(adminKey string) (Caller, bool) {
	h := sha256.Sum256([]byte(adminKey))
	for _, k := range s.rootKeys {
		if subtle.ConstantTimeCompare(h[:], k[:]) == 1 {
			return Caller{Root: true}, true
		}
	}
	s.mu.RLock()
	id, ok := s.m.adminByHash[fmt.Sprintf("%x", h)]
	s.mu.RUnlock()
	if !ok {
		return Caller{}, false
	}
	return Caller{Admin: id}, true
}

// change is one record write of a commit: obj nil deletes.
type change struct {
	kind, id string
	obj      any
}

// commit persists changes atomically, applies them to the model, invalidates
// the cache and publishes the invalidation. The caller holds writeMu and has
// validated the changes against the current model.
func (s *Service) commit(ctx context.Context, changes []change) (uint64, error) {
	muts := make([]Mutation, len(changes))
	for i, ch := range changes {
		muts[i] = Mutation{Kind: ch.kind, ID: ch.id}
		if ch.obj != nil {
			data, err := json.Marshal(storedForm(ch.obj))
			if err != nil {
				return 0, fmt.Errorf("authz: encode %s/%s: %w", ch.kind, ch.id, err)
			}
			muts[i].Data = data
		}
	}
	if since := s.outageSince.Load(); since != 0 {
		return 0, fmt.Errorf("%w since %s", ErrStoreUnavailable, nsTime(since).UTC().Format(time.RFC3339))
	}
	rev, err := s.Store.Commit(ctx, s.rev, muts)
	if errors.Is(err, ErrRevisionConflict) {
		// Another node wrote first: catch up so the next attempt validates
		// against current data; Handle retries the request.
		if cerr := s.catchUp(ctx); cerr != nil {
			s.Logger.Error("authz catch up after conflict", "error", cerr)
		}
		return 0, fmt.Errorf("%w: the store changed concurrently, retry: %w", ErrConflict, ErrRevisionConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	inv := s.apply(changes, rev)
	s.Logger.Debug("authz commit", "rev", rev, "changes", len(changes),
		"subjects", len(inv.Subjects), "devices", len(inv.Devices), "pairs", len(inv.Pairs))
	return rev, nil
}

// apply puts committed changes into the model at revision rev, drops the L1
// entries they bear on and publishes the invalidation. The caller holds
// writeMu. Local commits and changes of other nodes both come through here.
func (s *Service) apply(changes []change, rev uint64) Invalidation {
	aff := newAffect()
	s.mu.Lock()
	for _, ch := range changes {
		s.m.affected(ch.kind, ch.id, aff)
		s.m.put(ch.kind, ch.id, ch.obj)
		s.m.affected(ch.kind, ch.id, aff)
	}
	s.m.shareRecipients(aff)
	s.rev = rev
	s.cache.rev.Add(1)
	inv := aff.invalidation(rev)
	s.cache.invalidate(&inv)
	s.mu.Unlock()
	s.publish(inv)
	return inv
}

// storedForm unwraps compiled records to what is persisted.
func storedForm(obj any) any {
	switch o := obj.(type) {
	case *grantC:
		return o.g
	case *shareC:
		return o.s
	}
	return obj
}

// decodeRecord turns stored JSON into the model's object for kind.
func decodeRecord(kind string, data []byte) (any, error) {
	var obj any
	switch kind {
	case kindOrgs:
		obj = &Org{}
	case kindSites:
		obj = &Site{}
	case kindDevices:
		obj = &Device{}
	case kindSubjects:
		obj = &Subject{}
	case kindGroups:
		obj = &Group{}
	case kindRoles:
		obj = &Role{}
	case kindGrants:
		obj = &Grant{}
	case kindShares:
		obj = &Share{}
	case kindRequests:
		obj = &AccessRequest{}
	case kindAdmins:
		obj = &Admin{}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, err
	}
	switch o := obj.(type) {
	case *Grant:
		return compileGrant(o)
	case *Share:
		return compileShare(o)
	}
	return obj, nil
}

// ScenarioPhotos reports whether photo-by-scenario runs now for a motion
// camera: its site allows photos by scenarios and the scenario rule
// ("always" or "armed") holds (seed 000, general settings).
func (s *Service) ScenarioPhotos(device string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.m.devices[device]
	if d == nil {
		return false
	}
	site := s.m.sites[d.Site]
	if site == nil || !site.PhotoScenarios {
		return false
	}
	return site.ScenarioRule != "armed" || s.m.liveSites[d.Site].armed.Load()
}
