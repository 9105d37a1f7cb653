package links

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Service is the share-link registry, minter and verifier of one node.
//
// Concurrency: the key set, the link snapshot and the verification cache
// are immutable values behind atomic pointers, so Verify and Decide take no
// lock on a hit; writers (API calls, misses, the sweep) serialize on
// linksMu / keysMu. Viewer counts are guarded by viewersMu.
type Service struct {
	// DataDir holds the embedded store file links.db when Store is nil.
	DataDir string
	// Store persists links and keys (default: a BoltStore at
	// DataDir/links.db, closed by Close; a given Store is not closed).
	Store Store
	// PublicURL prefixes the url of a created link: PublicURL/s/{token}
	// (default "http://localhost:8080").
	PublicURL string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger (default: discard). Tokens are never logged, only their
	// fingerprint (Fingerprint).
	Logger *slog.Logger

	// Policy answers every permission question links asks (required):
	// who may manage links, whose links an admin's individual access
	// reaches, and what a link's creator may still give. There is no
	// default: an unchecked link is not a safe fallback.
	Policy Policy
	// OnChange is called after a link was disabled, enabled or deleted
	// here, or invalidated by Invalidate, so the gateway re-checks (ends)
	// that link's sessions. It must not block. Default: nothing.
	OnChange func(linkID string)

	// MaxValidity bounds not_after - now on create (default 1 year).
	MaxValidity time.Duration
	// Leeway tolerates clock skew between nodes on a token's nbf/exp
	// (default 5s).
	Leeway time.Duration
	// KeyRefreshMin is the least time between two reloads of the key set
	// caused by tokens with an unknown kid (default 1s), so forged kids
	// cannot hammer the store.
	KeyRefreshMin time.Duration
	// VerifyCacheSize bounds the cache of verified tokens (default 10000;
	// negative disables it).
	VerifyCacheSize int
	// SweepInterval is how often retired keys and the tombstones of
	// deleted, expired links are dropped (default 10m).
	SweepInterval time.Duration

	ownStore bool
	parser   *jwt.Parser
	page     *viewerPage
	assets   map[string][]byte // read once; served with SetBodyRaw

	keys     atomic.Pointer[keySet]
	keysMu   sync.Mutex // serializes key reloads; guards lastKeyLoad
	lastLoad time.Time

	links   atomic.Pointer[map[string]*Link] // copy-on-write snapshot
	linksMu sync.Mutex                       // serializes snapshot writers

	vcache atomic.Pointer[verifyCache]

	viewersMu sync.Mutex
	viewers   map[string]int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Initialize applies defaults, opens the store, loads keys and links,
// creates the first signing key when there is none, and starts the sweep.
func (s *Service) Initialize() error {
	if err := s.defaults(); err != nil {
		return err
	}
	if s.Store == nil {
		if s.DataDir == "" {
			return errors.New("links: DataDir or Store is required")
		}
		st, err := OpenBoltStore(filepath.Join(s.DataDir, "links.db"))
		if err != nil {
			return err
		}
		s.Store, s.ownStore = st, true
	}
	page, err := newViewerPage()
	if err != nil {
		return fmt.Errorf("links: viewer page: %w", err)
	}
	s.page = page
	if s.assets, err = loadAssets(); err != nil {
		return fmt.Errorf("links: assets: %w", err)
	}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithoutClaimsValidation(), // checked by Verify itself, the same way on the cached path
		jwt.WithStrictDecoding(),
	)
	s.vcache.Store(newVerifyCache(s.VerifyCacheSize))
	s.viewers = make(map[string]int)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.start(); err != nil {
		s.Close()
		return err
	}
	s.wg.Go(s.sweepLoop)
	return nil
}

func (s *Service) defaults() error {
	if s.PublicURL == "" {
		s.PublicURL = "http://localhost:8080"
	}
	s.PublicURL = strings.TrimRight(s.PublicURL, "/")
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Policy == nil {
		return errors.New("links: Policy is required")
	}
	if s.OnChange == nil {
		s.OnChange = func(string) {}
	}
	if s.MaxValidity == 0 {
		s.MaxValidity = 365 * 24 * time.Hour
	}
	if s.Leeway == 0 {
		s.Leeway = 5 * time.Second
	}
	if s.KeyRefreshMin == 0 {
		s.KeyRefreshMin = time.Second
	}
	if s.VerifyCacheSize == 0 {
		s.VerifyCacheSize = 10000
	}
	if s.SweepInterval == 0 {
		s.SweepInterval = 10 * time.Minute
	}
	if s.MaxValidity < 0 || s.Leeway < 0 || s.KeyRefreshMin < 0 || s.SweepInterval < 0 {
		return errors.New("links: MaxValidity, Leeway, KeyRefreshMin and SweepInterval must not be negative")
	}
	return nil
}

func (s *Service) start() error {
	all, err := s.Store.ListLinks(s.ctx)
	if err != nil {
		return err
	}
	m := make(map[string]*Link, len(all))
	for i := range all {
		m[all[i].ID] = &all[i]
	}
	s.links.Store(&m)
	if err := s.loadKeys(s.ctx); err != nil {
		return err
	}
	if s.keys.Load().current == nil {
		if _, err := s.RotateKey(); err != nil {
			return fmt.Errorf("links: first signing key: %w", err)
		}
	}
	return nil
}

// Close stops the sweep and closes the store if Initialize opened it.
func (s *Service) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.ownStore && s.Store != nil {
		if err := s.Store.Close(); err != nil {
			s.Logger.Warn("closing the links store", "error", err)
		}
		s.Store = nil
	}
}

func (s *Service) sweepLoop() {
	t := time.NewTicker(s.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := s.Sweep(); err != nil {
				s.Logger.Warn("links sweep failed", "error", err)
			}
		}
	}
}

// errKeep aborts a store update that found nothing to change.
var errKeep = errors.New("keep")

// Sweep drops signing keys whose links have all expired (never the current
// key) and the tombstones of deleted links whose not_after has passed. It
// runs every SweepInterval and after RotateKey.
func (s *Service) Sweep() error {
	now := s.Now()
	ks := s.keys.Load()
	var errs []error
	for kid, k := range ks.byKid {
		if k == ks.current || !now.After(k.retireAfter.Add(s.Leeway)) {
			continue
		}
		err := s.Store.UpdateKey(s.ctx, kid, func(cur *SigningKey) (*SigningKey, error) {
			// Re-read: another node may have signed a link with it since.
			if cur == nil || now.After(cur.RetireAfter.Add(s.Leeway)) {
				return nil, nil
			}
			return nil, errKeep
		})
		if err != nil && !errors.Is(err, errKeep) {
			errs = append(errs, err)
			continue
		}
		if err == nil {
			s.Logger.Info("retired link signing key dropped", "kid", kid)
		}
	}
	if err := s.reloadKeys(); err != nil {
		errs = append(errs, err)
	}
	for id, l := range *s.links.Load() {
		if l == nil || !l.Deleted || !now.After(l.NotAfter.Add(s.Leeway)) {
			continue
		}
		err := s.Store.UpdateLink(s.ctx, id, func(cur *Link) (*Link, error) {
			if cur == nil || (cur.Deleted && now.After(cur.NotAfter.Add(s.Leeway))) {
				return nil, nil
			}
			return nil, errKeep
		})
		if err != nil && !errors.Is(err, errKeep) {
			errs = append(errs, err)
			continue
		}
		s.forget(id)
	}
	return errors.Join(errs...)
}

// CreatorID is how a caller is stored as a link's creator: "root",
// "admin:<id>", or the subject id of a viewer.
func CreatorID(c Creator) string {
	switch {
	case c.Root:
		return "root"
	case c.Admin != "":
		return "admin:" + c.Admin
	}
	return c.Subject
}
