package ptz

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Holder kinds known to DefaultPriorities. Any other kind is allowed and gets
// priority 0 unless configured.
const (
	KindAdmin          = "admin"
	KindPrivacyManager = "privacy_manager"
	KindCompany        = "company"
	KindEmployee       = "employee"
	KindInstaller      = "installer"
	KindIntegrator     = "integrator"
	KindUser           = "user"
	KindLink           = "link"
)

// DefaultPriorities returns a fresh copy of the default order: privacy manager
// > company > installer > user. Admins (the deployer's operators) outrank
// everyone; employees act for their company and integrators for the installer
// side; share-link viewers come last.
func DefaultPriorities() map[string]int {
	return map[string]int{
		KindAdmin:          50,
		KindPrivacyManager: 40,
		KindCompany:        30,
		KindEmployee:       30,
		KindInstaller:      20,
		KindIntegrator:     20,
		KindUser:           10,
		KindLink:           5,
	}
}

// Holder is who steers a camera. ID and Kind together identify it (a link id
// and a user id may collide); Priority decides take-overs.
type Holder struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Priority 0 means "by Kind": the Controller fills it from its Priorities.
	Priority int `json:"priority"`
}

// Same reports whether h and o are the same holder.
func (h Holder) Same(o Holder) bool { return h.ID == o.ID && h.Kind == o.Kind }

// Lease is a camera's current holder and the instant the lease lapses unless
// renewed.
type Lease struct {
	Camera string    `json:"camera"`
	Holder Holder    `json:"holder"`
	Until  time.Time `json:"until"`
	// TakenFrom is the holder whose unexpired lease this one took over
	// (set by TryAcquire only, never stored).
	TakenFrom *Holder `json:"-"`
}

// ErrLeaseHeld is returned when another holder of equal or higher priority
// holds the camera (HTTP 409).
type ErrLeaseHeld struct {
	Holder Holder
	Until  time.Time
}

func (e *ErrLeaseHeld) Error() string {
	return fmt.Sprintf("ptz: camera is controlled by %s %q until %s",
		e.Holder.Kind, e.Holder.ID, e.Until.UTC().Format(time.RFC3339))
}

// LeaseStore keeps one lease per camera. Implementations must make
// TryAcquire atomic per camera (a compare-and-set): of two holders racing for
// a free camera exactly one wins. now is passed in so that every node judges
// expiry by the same caller-supplied clock and tests can move time.
type LeaseStore interface {
	// TryAcquire grants, renews or takes over the camera's lease for h until
	// now+ttl: granted when the camera is free or its lease lapsed (until <=
	// now), renewed when h already holds it, taken over when h's priority is
	// strictly higher than the holder's. Otherwise it returns *ErrLeaseHeld.
	TryAcquire(ctx context.Context, camera string, h Holder, ttl time.Duration, now time.Time) (Lease, error)
	// Release frees the camera if h holds it; otherwise it does nothing.
	Release(ctx context.Context, camera string, h Holder) error
}

// decideLease is the compare step shared by every LeaseStore: given the
// current lease (ok=false when none), it returns the lease to store, or the
// refusal.
func decideLease(cur Lease, ok bool, camera string, h Holder, ttl time.Duration, now time.Time) (Lease, error) {
	held := ok && now.Before(cur.Until) && !cur.Holder.Same(h)
	if held && h.Priority <= cur.Holder.Priority {
		return Lease{}, &ErrLeaseHeld{Holder: cur.Holder, Until: cur.Until}
	}
	l := Lease{Camera: camera, Holder: h, Until: now.Add(ttl)}
	if held {
		prev := cur.Holder
		l.TakenFrom = &prev
	}
	return l, nil
}

// MemoryLeases is a LeaseStore for a single node. The zero value is ready;
// one mutex guards the map, held only for a map lookup and store.
type MemoryLeases struct {
	mu     sync.Mutex
	leases map[string]Lease
}

// NewMemoryLeases returns an empty in-process lease store.
func NewMemoryLeases() *MemoryLeases { return &MemoryLeases{} }

// TryAcquire implements LeaseStore.
func (m *MemoryLeases) TryAcquire(_ context.Context, camera string, h Holder, ttl time.Duration, now time.Time) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.leases[camera]
	l, err := decideLease(cur, ok, camera, h, ttl, now)
	if err != nil {
		return Lease{}, err
	}
	if m.leases == nil {
		m.leases = make(map[string]Lease)
	}
	m.leases[camera] = l
	return l, nil
}

// Release implements LeaseStore.
func (m *MemoryLeases) Release(_ context.Context, camera string, h Holder) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.leases[camera]; ok && cur.Holder.Same(h) {
		delete(m.leases, camera)
	}
	return nil
}
