package authz

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// term is one rule that gives actions to a (subject, device) pair, already
// known to be in force by time at the moment the entry was computed. Its
// condition is evaluated against live site/device state at request time.
type term struct {
	actions    Action
	cond       condition
	armed      *atomic.Bool  // condArmed: the device's site
	alarm      *atomic.Int64 // condAfterAlarm: the device's alarm window end
	footage    time.Duration // archive/download only this far back; 0 = unlimited
	reason     string        // why it allows
	condReason string        // why it does not, when its condition is unmet
	footReason string        // why it does not, for footage older than footage
	// owner is, for a share's term (condOwner), the share owner's own entry
	// for the device: the term gives an action only while the owner's entry
	// does, and nothing once it no longer gives share (rule 8). lostReason
	// is why, then; condReason is why when the owner lacks the action.
	owner      *entry
	lostReason string
}

// entry is the cached answer for one (subject, device) pair: every action,
// valid for now in [from, expires) while the generations it was computed at
// are current.
type entry struct {
	subject    string
	device     string
	epoch      uint64
	subjGen    uint64
	devGen     uint64
	subjGenP   *atomic.Uint64
	devGenP    *atomic.Uint64
	from       int64 // unix ns
	expires    int64 // unix ns; the earliest time edge of any rule below
	terms      []term
	edges      [numActions]int64 // per action: next instant a rule bearing on it changes by time (0 = never)
	static     [numActions]int8  // per action: a term that allows it unconditionally (-1 = none), the fast path
	blocked    Action            // actions no term may give (site disallows photos on demand)
	blockedWhy string
	denyWhy    string // entry-wide denial reason (unknown subject, integrator restriction), "" = default deny
}

const cacheShards = 64

type cacheShard struct {
	mu     sync.RWMutex
	m      map[uint64]*entry // by pair hash; the entry's subject and device are compared on a hit
	hits   atomic.Uint64     // counted per shard: no shared cache line on the hot path
	misses atomic.Uint64
	_      [24]byte // keep shards on separate cache lines
}

// decisionCache is the L1 cache. Reads take one shard's read lock and do not
// allocate. Invalidation is a generation bump: per subject, per device, or the
// global epoch, so dropping "every entry of device X" needs no scan; single
// pairs are deleted. An entry computed while a write was being applied is not
// inserted (the model revision it saw is no longer current).
type decisionCache struct {
	seed       maphash.Seed
	epoch      atomic.Uint64
	rev        atomic.Uint64 // model revision, bumped with every applied write
	perShard   int
	shards     [cacheShards]cacheShard
	gensMu     sync.Mutex
	subjectGen map[string]*atomic.Uint64
	deviceGen  map[string]*atomic.Uint64
}

func newDecisionCache(maxEntries int) *decisionCache {
	c := &decisionCache{
		seed:       maphash.MakeSeed(),
		perShard:   max(maxEntries/cacheShards, 16),
		subjectGen: map[string]*atomic.Uint64{},
		deviceGen:  map[string]*atomic.Uint64{},
	}
	for i := range c.shards {
		c.shards[i].m = map[uint64]*entry{}
	}
	return c
}

// key hashes a pair once for both the shard and the map: a uint64 map key is
// much cheaper than hashing two strings again inside the map.
func (c *decisionCache) key(subject, device string) (*cacheShard, uint64) {
	h := maphash.String(c.seed, subject)
	h = (h ^ bits.RotateLeft64(maphash.String(c.seed, device), 31)) * 0x9E3779B97F4A7C15
	return &c.shards[h>>58], h // top 6 bits pick one of 64 shards
}

// get returns the entry for (subject, device) if it is current at now.
func (c *decisionCache) get(subject, device string, now int64) *entry {
	sh, k := c.key(subject, device)
	sh.mu.RLock()
	e := sh.m[k]
	sh.mu.RUnlock()
	if e == nil || e.subject != subject || e.device != device || e.epoch != c.epoch.Load() || now < e.from || (e.expires != 0 && now >= e.expires) ||
		e.subjGen != e.subjGenP.Load() || e.devGen != e.devGenP.Load() {
		sh.misses.Add(1)
		return nil
	}
	sh.hits.Add(1)
	return e
}

// stats sums the shards' hit and miss counters.
func (c *decisionCache) stats() (hits, misses uint64) {
	for i := range c.shards {
		hits += c.shards[i].hits.Load()
		misses += c.shards[i].misses.Load()
	}
	return hits, misses
}

// gens returns the generation counters of a pair, creating them on first use.
func (c *decisionCache) gens(subject, device string) (*atomic.Uint64, *atomic.Uint64) {
	c.gensMu.Lock()
	defer c.gensMu.Unlock()
	s := c.subjectGen[subject]
	if s == nil {
		s = new(atomic.Uint64)
		c.subjectGen[subject] = s
	}
	d := c.deviceGen[device]
	if d == nil {
		d = new(atomic.Uint64)
		c.deviceGen[device] = d
	}
	return s, d
}

// stamp records the generations an evaluation starts from. It must be called
// while the model read lock is held, so the stamp matches the model seen.
func (c *decisionCache) stamp(e *entry, subject, device string) (rev uint64) {
	e.subjGenP, e.devGenP = c.gens(subject, device)
	e.subjGen, e.devGen = e.subjGenP.Load(), e.devGenP.Load()
	e.epoch = c.epoch.Load()
	return c.rev.Load()
}

// put inserts e unless a write was applied since its evaluation started at rev.
func (c *decisionCache) put(subject, device string, e *entry, rev uint64) {
	e.subject, e.device = subject, device
	sh, k := c.key(subject, device)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c.rev.Load() != rev {
		return
	}
	if len(sh.m) >= c.perShard {
		for k := range sh.m { // evict an arbitrary entry: map order is random
			delete(sh.m, k)
			break
		}
	}
	sh.m[k] = e
}

// invalidate applies an invalidation. Called with the model write lock held,
// after the new model is in place and c.rev was bumped.
func (c *decisionCache) invalidate(inv *Invalidation) {
	if inv.All {
		c.epoch.Add(1)
		return
	}
	c.gensMu.Lock()
	for _, s := range inv.Subjects {
		if g := c.subjectGen[s]; g != nil {
			g.Add(1)
		}
	}
	for _, d := range inv.Devices {
		if g := c.deviceGen[d]; g != nil {
			g.Add(1)
		}
	}
	c.gensMu.Unlock()
	for _, p := range inv.Pairs {
		sh, k := c.key(p.Subject, p.Device)
		sh.mu.Lock()
		delete(sh.m, k)
		sh.mu.Unlock()
	}
}

// len counts entries (tests and metrics).
func (c *decisionCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
