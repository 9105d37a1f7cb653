package links_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camgate/camgate/links"
)

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// world is what the gateway would answer: who may share which device, which
// devices exist, and the OnChange calls received.
type world struct {
	mu       sync.Mutex
	sharers  map[string]bool // "creator/device"
	lacking  map[string]bool // "creator/device/action" the creator does not hold
	scoped   map[string]bool // admin ids with individual access (see only their own links)
	changes  []string
	changeCh chan string
}

func newWorld() *world {
	return &world{sharers: map[string]bool{}, lacking: map[string]bool{}, scoped: map[string]bool{}, changeCh: make(chan string, 64)}
}

func (w *world) allowShare(creator, device string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sharers[creator+"/"+device] = ok
}

// MayManage implements links.Policy: root and every admin (sections are
// gateway tests' business).
func (w *world) MayManage(c links.Creator, _ bool) bool { return c.Root || c.Admin != "" }

// Sees implements links.Policy: admins in w.scoped see only their own links.
func (w *world) Sees(c links.Creator, creator, _ string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.scoped[c.Admin] || creator == "admin:"+c.Admin
}

// CreatorMay implements links.Policy.
func (w *world) CreatorMay(creator, device, action string, now time.Time) bool {
	if action == "share" {
		return w.creatorAllowed(creator, device, now)
	}
	return w.creatorHas(creator, device, action, now)
}

// Device implements links.Policy.
func (w *world) Device(d string) (string, bool) {
	name, ok := map[string]string{"cam1": "Front door", "cam2": "Garage"}[d]
	return name, ok
}

func (w *world) creatorAllowed(creator, device string, _ time.Time) bool {
	if creator == "root" || len(creator) > 6 && creator[:6] == "admin:" {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sharers[creator+"/"+device]
}

func (w *world) creatorHas(creator, device, action string, _ time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.lacking[creator+"/"+device+"/"+action]
}

func (w *world) onChange(id string) {
	w.mu.Lock()
	w.changes = append(w.changes, id)
	w.mu.Unlock()
	select { // OnChange must not block
	case w.changeCh <- id:
	default:
	}
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	svc   *links.Service
	clock *clock
	world *world
	logs  *syncBuffer
	dir   string
}

// newEnv starts a Service on a fresh data dir with an injected clock.
func newEnv(t testing.TB, tweak ...func(*links.Service)) *env {
	t.Helper()
	e := &env{clock: &clock{t: t0}, world: newWorld(), logs: &syncBuffer{}, dir: t.TempDir()}
	e.svc = e.start(t, tweak...)
	return e
}

func (e *env) start(t testing.TB, tweak ...func(*links.Service)) *links.Service {
	t.Helper()
	s := &links.Service{
		DataDir:   e.dir,
		PublicURL: "https://cams.example.com/",
		Now:       e.clock.Now,
		Logger:    slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Policy:    e.world,
		OnChange:  e.world.onChange,
	}
	for _, f := range tweak {
		f(s)
	}
	if err := s.Initialize(); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

var root = links.Creator{Root: true}

func tp(t time.Time) *time.Time { return &t }

// create makes a link as root for cam1, valid [from, until).
func (e *env) create(t testing.TB, from, until time.Time, mod ...func(*links.CreateRequest)) links.Created {
	t.Helper()
	req := links.CreateRequest{Device: "cam1", Actions: []string{"live", "sound"}, NotBefore: tp(from), NotAfter: tp(until)}
	for _, f := range mod {
		f(&req)
	}
	c, err := e.svc.Create(root, req)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return c
}

// countingStore counts key-set reads.
type countingStore struct {
	links.Store
	keyLists atomic.Int64
}

func (c *countingStore) ListKeys(ctx context.Context) ([]links.SigningKey, error) {
	c.keyLists.Add(1)
	return c.Store.ListKeys(ctx)
}
