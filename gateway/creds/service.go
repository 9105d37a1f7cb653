package creds

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/camgate/camgate/authz"
)

// DefaultRealm is the Digest realm camgate challenges with.
const DefaultRealm = "camgate"

// Service creates, verifies and revokes stream credentials on one node.
//
// Concurrency: the cache is guarded by mu (read-locked on the verify path);
// pending last-used times by touchMu. The store is only called on a cache
// miss, on API calls and by the touch flusher.
type Service struct {
	// DataDir holds stream-credentials.db (when Store is nil) and the node
	// key stream-credentials.key (when Key is nil).
	DataDir string
	// Store persists credentials (default: a BoltStore at
	// DataDir/stream-credentials.db, closed by Close; a given Store is not
	// closed).
	Store Store
	// Key seals HA1 (32 bytes; default: read or created at
	// DataDir/stream-credentials.key).
	Key []byte
	// Realm is the Digest realm HA1 is made for (default DefaultRealm).
	Realm string
	// OnRevoke is called after a credential was revoked here, so the
	// gateway ends its sessions and tells the other nodes. It must not
	// block. Default: nothing.
	OnRevoke func(id string)
	// CacheTTL is how long a cached credential is trusted before it is read
	// again (default 1m): the bound on a revoke whose change message was
	// lost between nodes.
	CacheTTL time.Duration
	// OutageGrace is how long past CacheTTL a cached credential is still
	// used while the store cannot be read (default 5m, as redis.outage_grace):
	// an unreachable Redis does not end credential sessions at once.
	OutageGrace time.Duration
	// TouchInterval is how often last-used times are written back, and the
	// least time between two writes for one credential (default 1m).
	TouchInterval time.Duration
	// MaxPerOwner bounds the credentials one subject or link holds
	// (default 100), expired ones included until revoked: a viewer token
	// creates its own, and the store must not grow without end.
	MaxPerOwner int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger (default: discard). Passwords are never logged.
	Logger *slog.Logger

	ownStore bool
	seal     *sealer

	mu    sync.RWMutex
	cache map[string]*entry

	touchMu sync.Mutex
	touched map[string]time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// entry is a cached credential: the record, its opened HA1 ("" when this
// node's key cannot open it) and when it was read.
type entry struct {
	c        Credential
	ha1      string
	loaded   time.Time
	lastSeen time.Time // last use recorded for the flusher (guarded by Service.touchMu)
}

// Initialize applies defaults, opens the store and the key, and starts the
// last-used flusher.
func (s *Service) Initialize() error {
	if s.Realm == "" {
		s.Realm = DefaultRealm
	}
	if s.CacheTTL <= 0 {
		s.CacheTTL = time.Minute
	}
	if s.OutageGrace <= 0 {
		s.OutageGrace = 5 * time.Minute
	}
	if s.TouchInterval <= 0 {
		s.TouchInterval = time.Minute
	}
	if s.MaxPerOwner <= 0 {
		s.MaxPerOwner = 100
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.OnRevoke == nil {
		s.OnRevoke = func(string) {}
	}
	if s.Key == nil {
		if s.DataDir == "" {
			return errors.New("stream credentials: DataDir or Key is required")
		}
		key, err := LoadOrCreateKey(filepath.Join(s.DataDir, "stream-credentials.key"))
		if err != nil {
			return err
		}
		s.Key = key
	}
	seal, err := newSealer(s.Key)
	if err != nil {
		return err
	}
	s.seal = seal
	if s.Store == nil {
		if s.DataDir == "" {
			return errors.New("stream credentials: DataDir or Store is required")
		}
		st, err := OpenBoltStore(filepath.Join(s.DataDir, "stream-credentials.db"))
		if err != nil {
			return err
		}
		s.Store, s.ownStore = st, true
	}
	s.cache = make(map[string]*entry)
	s.touched = make(map[string]time.Time)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.flushLoop()
	return nil
}

// Close stops the flusher (writing what it holds) and closes an own store.
func (s *Service) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
	s.flushTouches(context.Background())
	if s.ownStore {
		_ = s.Store.Close()
	}
}

// CreateRequest is the body of POST /api/v1/stream-credentials.
type CreateRequest struct {
	Subject  string     `json:"subject,omitempty"`
	Link     string     `json:"link,omitempty"`
	Label    string     `json:"label,omitempty"`
	NotAfter *time.Time `json:"not_after,omitempty"`
}

// View is a credential as the API shows it: never a secret.
type View struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Subject   string    `json:"subject,omitempty"`
	Link      string    `json:"link,omitempty"`
	Label     string    `json:"label,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	LastUsed  time.Time `json:"last_used,omitzero"`
}

// Created is the answer to a create: the view and, this once, the password.
type Created struct {
	View
	Password string `json:"password"`
}

func viewOf(c *Credential) View {
	return View{ID: c.ID, Username: c.ID, Subject: c.Subject, Link: c.Link, Label: c.Label,
		CreatedAt: c.CreatedAt, CreatedBy: c.CreatedBy, NotAfter: c.NotAfter, LastUsed: c.LastUsed}
}

// Create validates req (errors name the field) and stores a new credential
// for it; createdBy is the caller as audit names it. Who may create it is
// the API's question (Policy), not Create's.
func (s *Service) Create(ctx context.Context, req CreateRequest, createdBy string) (Created, error) {
	if err := s.validate(&req); err != nil {
		return Created{}, err
	}
	return s.create(ctx, req, createdBy)
}

// create makes and stores a new credential for a validated request.
func (s *Service) create(ctx context.Context, req CreateRequest, createdBy string) (Created, error) {
	// Counted before the write, so two creates racing may pass the bound
	// by one each: it bounds growth, it is not a quota to the unit.
	all, err := s.Store.List(ctx)
	if err != nil {
		return Created{}, err
	}
	held := 0
	for i := range all {
		if all[i].Subject == req.Subject && all[i].Link == req.Link {
			held++
		}
	}
	if held >= s.MaxPerOwner {
		return Created{}, fmt.Errorf("%s already has %d stream credentials, the most one may hold: revoke unused ones (expired ones count until revoked): %w",
			owner(req.Subject, req.Link), held, authz.ErrConflict)
	}
	password, err := newPassword()
	if err != nil {
		return Created{}, err
	}
	for range 8 { // a username collision (2^-39 per pair) draws again
		id, err := newUsername()
		if err != nil {
			return Created{}, err
		}
		c := Credential{ID: id, Subject: req.Subject, Link: req.Link, Label: req.Label,
			CreatedAt: s.Now().UTC().Truncate(time.Second), CreatedBy: createdBy, Realm: s.Realm, KeyID: s.seal.keyID}
		if req.NotAfter != nil {
			c.NotAfter = req.NotAfter.UTC()
		}
		c.Salt = make([]byte, 16)
		if _, err := rand.Read(c.Salt); err != nil {
			return Created{}, err
		}
		h := basicHash(c.Salt, password)
		c.BasicHash = h[:]
		if c.SealedHA1, err = s.seal.seal(id, s.Realm, HA1(id, s.Realm, password)); err != nil {
			return Created{}, err
		}
		err = s.Store.Update(ctx, id, func(cur *Credential) (*Credential, error) {
			if cur != nil {
				return nil, ErrExists
			}
			return &c, nil
		})
		if errors.Is(err, ErrExists) {
			continue
		}
		if err != nil {
			return Created{}, err
		}
		return Created{View: viewOf(&c), Password: password}, nil
	}
	return Created{}, errors.New("stream credentials: no free username")
}

// get reads one credential from the store.
func (s *Service) get(ctx context.Context, id string) (Credential, error) {
	return s.Store.Get(ctx, id)
}

// list returns the stored credentials that keep, oldest first.
func (s *Service) list(ctx context.Context, keep func(*Credential) bool) ([]View, error) {
	s.flushTouches(ctx)
	all, err := s.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := []View{}
	for i := range all {
		if keep(&all[i]) {
			out = append(out, viewOf(&all[i]))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// List returns every stored credential (no secret), oldest first; the API
// filters it by who asks.
func (s *Service) List(ctx context.Context) ([]View, error) {
	return s.list(ctx, func(*Credential) bool { return true })
}

// Revoke deletes credential id: it stops verifying at once on this node
// and OnRevoke ends its sessions (and tells the other nodes).
func (s *Service) Revoke(ctx context.Context, id string) error {
	err := s.Store.Update(ctx, id, func(cur *Credential) (*Credential, error) {
		if cur == nil {
			return nil, ErrNotFound
		}
		return nil, nil
	})
	if err != nil {
		return err
	}
	s.Forget(id)
	s.OnRevoke(id)
	return nil
}

// RevokeSubject revokes every credential of subject, which was deleted: a
// subject made later under the same id must not inherit them. It returns
// how many it revoked; one another node revoked first is not an error.
func (s *Service) RevokeSubject(ctx context.Context, subject string) (int, error) {
	views, err := s.list(ctx, func(c *Credential) bool { return c.Subject == subject })
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range views {
		switch err := s.Revoke(ctx, v.ID); {
		case err == nil:
			n++
		case errors.Is(err, ErrNotFound):
		default:
			return n, err
		}
	}
	return n, nil
}

// Forget drops this node's cached copy of id (another node revoked it):
// the next use reads the store.
func (s *Service) Forget(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
	s.touchMu.Lock()
	delete(s.touched, id)
	s.touchMu.Unlock()
}

// Resolved is what a verified credential names: its id, and the subject or
// the link it stands for.
type Resolved struct {
	ID, Subject, Link string
	// NotAfter is the credential's end (zero: none).
	NotAfter time.Time
}

func resolved(c *Credential) Resolved {
	return Resolved{ID: c.ID, Subject: c.Subject, Link: c.Link, NotAfter: c.NotAfter}
}

// lookup returns the cached entry for id, reading the store on a miss or
// when the cached copy is older than CacheTTL.
func (s *Service) lookup(id string, now time.Time) (*entry, error) {
	s.mu.RLock()
	e := s.cache[id]
	s.mu.RUnlock()
	if e != nil && now.Sub(e.loaded) < s.CacheTTL {
		return e, nil
	}
	c, err := s.get(s.ctx, id)
	if errors.Is(err, ErrNotFound) {
		s.Forget(id)
		return nil, ErrBadCredentials
	}
	if err != nil {
		if e != nil && now.Sub(e.loaded) < s.CacheTTL+s.OutageGrace {
			return e, nil // the store is unreachable: the cached copy holds for the grace
		}
		return nil, fmt.Errorf("stream credentials: %w", err)
	}
	e = &entry{c: c, loaded: now}
	if ha1, err := s.seal.open(&c); err == nil {
		e.ha1 = ha1
	} else {
		s.Logger.Warn("stream credential: Digest refused for it on this node", "credential", c.ID, "error", err)
	}
	s.mu.Lock()
	s.cache[id] = e
	s.mu.Unlock()
	return e, nil
}

// live checks an entry's validity window.
func live(e *entry, now time.Time) bool {
	return e.c.NotAfter.IsZero() || now.Before(e.c.NotAfter)
}

// VerifyBasic checks a Basic username and password. Every failure is
// ErrBadCredentials (or a store error wrapped, when it could not be read).
func (s *Service) VerifyBasic(username, password string) (Resolved, error) {
	now := s.Now()
	e, err := s.lookup(username, now)
	if err != nil {
		return Resolved{}, err
	}
	h := basicHash(e.c.Salt, password)
	if subtle.ConstantTimeCompare(h[:], e.c.BasicHash) != 1 || !live(e, now) {
		return Resolved{}, ErrBadCredentials
	}
	s.touch(e, now)
	return resolved(&e.c), nil
}

// Digest is an RTSP Digest answer as the client sent it (parsed by the
// edge) and the values the server expects.
type Digest struct {
	Username, Realm, Nonce, URI, Response string
	// Method is the request's method (DESCRIBE, SETUP, PLAY).
	Method string
	// ExpectedNonce is the nonce this connection was challenged with.
	ExpectedNonce string
}

// VerifyDigest checks a Digest (MD5) answer against the stored HA1.
func (s *Service) VerifyDigest(d Digest) (Resolved, error) {
	if d.ExpectedNonce == "" || !equalString(d.Nonce, d.ExpectedNonce) || d.Realm != s.Realm {
		return Resolved{}, ErrBadCredentials
	}
	now := s.Now()
	e, err := s.lookup(d.Username, now)
	if err != nil {
		return Resolved{}, err
	}
	if e.ha1 == "" || e.c.Realm != s.Realm || !live(e, now) {
		return Resolved{}, ErrBadCredentials
	}
	want := digestResponse(e.ha1, d.Nonce, d.Method, d.URI)
	if len(d.Response) != len(want) || subtle.ConstantTimeCompare(want[:], []byte(d.Response)) != 1 {
		return Resolved{}, ErrBadCredentials
	}
	s.touch(e, now)
	return resolved(&e.c), nil
}

// Live tells whether credential id still exists and is within its window
// (the re-check of an open session), from the cache when it can.
func (s *Service) Live(id string, now time.Time) (Resolved, error) {
	e, err := s.lookup(id, now)
	if err != nil {
		return Resolved{}, err
	}
	if !live(e, now) {
		return Resolved{}, ErrBadCredentials
	}
	return resolved(&e.c), nil
}

// touch records a use for the flusher, at most once per TouchInterval per
// credential.
func (s *Service) touch(e *entry, now time.Time) {
	s.touchMu.Lock()
	if now.Sub(e.lastSeen) >= s.TouchInterval {
		e.lastSeen = now
		s.touched[e.c.ID] = now
	}
	s.touchMu.Unlock()
}

func (s *Service) flushLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.TouchInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.flushTouches(s.ctx)
		}
	}
}

// flushTouches writes the pending last-used times.
func (s *Service) flushTouches(ctx context.Context) {
	s.touchMu.Lock()
	pending := s.touched
	s.touched = make(map[string]time.Time)
	s.touchMu.Unlock()
	for id, at := range pending {
		at = at.UTC().Truncate(time.Second)
		err := s.Store.Update(ctx, id, func(cur *Credential) (*Credential, error) {
			if cur == nil {
				return nil, ErrNotFound // revoked meanwhile: nothing to touch
			}
			if !at.After(cur.LastUsed) {
				return cur, nil
			}
			cur.LastUsed = at
			return cur, nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			s.Logger.Warn("stream credential: writing its last use", "credential", id, "error", err)
		}
	}
}
