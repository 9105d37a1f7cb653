package authz_test

import (
	. "github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/jsonapi"

	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var root = Caller{Root: true}

// memStore is the in-memory test store (export_test.go).
type memStore = MemStore

func viewer(s string) Caller { return Caller{Subject: s} }

// t0 is a Wednesday, 10:00 UTC.
var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

type harness struct {
	t     *testing.T
	s     *Service
	clk   *clock
	dir   string
	store Store // nil: bolt in dir
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clk: &clock{now: t0}, dir: t.TempDir()}
	h.open()
	return h
}

func (h *harness) open() {
	h.t.Helper()
	h.s = &Service{DataDir: h.dir, Store: h.store, Now: h.clk.Now, AdminKeys: []string{"root-key-0123456789"}}
	if err := h.s.Initialize(); err != nil {
		h.t.Fatalf("Initialize: %v", err)
	}
	s := h.s
	h.t.Cleanup(s.Close)
}

// newMemHarness is a harness on the in-memory store (no fsync per write).
func newMemHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clk: &clock{now: t0}, store: &memStore{}}
	h.open()
	return h
}

// restart closes the service and opens a new one on the same data dir.
func (h *harness) restart() {
	h.t.Helper()
	h.s.Close()
	h.open()
}

// call runs one API request; path is "/grants/g1?x=y" relative to /api/v1.
func (h *harness) call(c Caller, method, path string, body any) (jsonapi.Result, error) {
	h.t.Helper()
	p, rawQuery, _ := strings.Cut(path, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		h.t.Fatal(err)
	}
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	default:
		if b, err = json.Marshal(v); err != nil {
			h.t.Fatal(err)
		}
	}
	return jsonapi.Handler{Service: h.s}.Handle(context.Background(), c, method, strings.Split(strings.Trim(p, "/"), "/"), q, b)
}

// must runs a request that must succeed and returns its body as JSON-decoded map/slice.
func (h *harness) must(c Caller, method, path string, body any) any {
	h.t.Helper()
	res, err := h.call(c, method, path, body)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	raw, err := json.Marshal(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// fails runs a request that must fail with want (errors.Is) or, for a
// *FieldError, naming field.
func (h *harness) fails(c Caller, method, path string, body any, want error, field string) {
	h.t.Helper()
	_, err := h.call(c, method, path, body)
	if err == nil {
		h.t.Fatalf("%s %s: succeeded; want %v %s", method, path, want, field)
	}
	if field != "" {
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			h.t.Fatalf("%s %s: err %v; want a 400 naming %q", method, path, err, field)
		}
		return
	}
	if !errors.Is(err, want) {
		h.t.Fatalf("%s %s: err %v; want %v", method, path, err, want)
	}
}

func (h *harness) allowed(subject, device string, a Action) bool {
	return h.s.Check(subject, device, a, h.clk.Now()).Allowed
}

// base creates org acme, site hq with sub-site lobby, cameras cam1 (hq) and
// cam2 (lobby), users alice and bob.
func (h *harness) base() {
	h.must(root, "PUT", "/orgs/acme", map[string]any{"name": "Acme"})
	h.must(root, "PUT", "/sites/hq", map[string]any{"org": "acme", "name": "HQ"})
	h.must(root, "PUT", "/sites/lobby", map[string]any{"parent": "hq", "name": "Lobby"})
	h.must(root, "PUT", "/devices/cam1", map[string]any{"site": "hq", "kind": "camera", "source": "rtsp://10.0.0.1/s1"})
	h.must(root, "PUT", "/devices/cam2", map[string]any{"site": "lobby", "kind": "camera", "source": "builtin:demo"})
	h.must(root, "PUT", "/subjects/alice", map[string]any{"kind": "user", "email": "alice@example.com", "org": "acme"})
	h.must(root, "PUT", "/subjects/bob", map[string]any{"kind": "user", "email": "bob@example.com"})
}

// invalidations collects published invalidations.
type invalidations struct {
	ch chan Invalidation
}

func (h *harness) subscribe() *invalidations {
	iv := &invalidations{ch: make(chan Invalidation, 1024)}
	cancel := h.s.Subscribe(func(inv Invalidation) { iv.ch <- inv })
	h.t.Cleanup(cancel)
	return iv
}

func (iv *invalidations) next(t *testing.T) Invalidation {
	t.Helper()
	select {
	case inv := <-iv.ch:
		return inv
	case <-time.After(5 * time.Second):
		t.Fatal("no invalidation within 5s")
	}
	return Invalidation{}
}
