package authz

import (
	"sort"
	"sync"
)

// Invalidation names what a committed write or state change affects. An
// entry (subject, device) is affected when All is set, its subject is in
// Subjects, its device is in Devices, or the pair is in Pairs. Rev is the
// store revision of the change; subscribers get events in Rev order (a
// subscriber that falls far behind gets one All event instead of the backlog).
type Invalidation struct {
	Rev      uint64
	All      bool
	Subjects []string
	Devices  []string
	Pairs    []Pair
}

// Affects reports whether the invalidation touches (subject, device).
func (inv *Invalidation) Affects(subject, device string) bool {
	if inv.All {
		return true
	}
	for _, s := range inv.Subjects {
		if s == subject {
			return true
		}
	}
	for _, d := range inv.Devices {
		if d == device {
			return true
		}
	}
	for _, p := range inv.Pairs {
		if p.Subject == subject && p.Device == device {
			return true
		}
	}
	return false
}

// maxPairs is how many (subject, device) pairs one effect names before it is
// widened to its subjects or its devices.
const maxPairs = 256

type affect struct {
	subjects set
	devices  set
	pairs    map[Pair]struct{}
}

func newAffect() *affect {
	return &affect{subjects: set{}, devices: set{}, pairs: map[Pair]struct{}{}}
}

// add records that every pair of subjects × devices is affected, naming it as
// exactly as maxPairs allows.
func (a *affect) add(subjects, devices set) {
	switch {
	case len(subjects) == 0 || len(devices) == 0:
	case len(subjects)*len(devices) <= maxPairs:
		for s := range subjects {
			for d := range devices {
				a.pairs[Pair{s, d}] = struct{}{}
			}
		}
	case len(subjects) <= len(devices):
		for s := range subjects {
			a.subjects[s] = struct{}{}
		}
	default:
		for d := range devices {
			a.devices[d] = struct{}{}
		}
	}
}

func (a *affect) invalidation(rev uint64) Invalidation {
	inv := Invalidation{Rev: rev}
	for s := range a.subjects {
		inv.Subjects = append(inv.Subjects, s)
	}
	for d := range a.devices {
		inv.Devices = append(inv.Devices, d)
	}
	for p := range a.pairs {
		if _, ok := a.subjects[p.Subject]; ok {
			continue
		}
		if _, ok := a.devices[p.Device]; ok {
			continue
		}
		inv.Pairs = append(inv.Pairs, p)
	}
	sort.Strings(inv.Subjects)
	sort.Strings(inv.Devices)
	sort.Slice(inv.Pairs, func(i, j int) bool {
		if inv.Pairs[i].Subject != inv.Pairs[j].Subject {
			return inv.Pairs[i].Subject < inv.Pairs[j].Subject
		}
		return inv.Pairs[i].Device < inv.Pairs[j].Device
	})
	return inv
}

// principalSubjects expands a grant principal to the subjects whose decisions
// it feeds: itself, a group's members, a company's employees.
func (m *model) principalSubjects(p string) set {
	out := set{p: {}}
	if g := m.groups[p]; g != nil {
		for _, s := range g.Members {
			out[s] = struct{}{}
		}
	}
	for e := range m.employees[p] {
		out[e] = struct{}{}
	}
	return out
}

func (m *model) grantAffect(g *Grant, a *affect) {
	devs := set{}
	if g.Site != "" {
		m.devicesUnder(g.Site, devs)
	} else {
		devs[g.Device] = struct{}{}
	}
	a.add(m.principalSubjects(g.Subject), devs)
}

// affected adds what the current version of kind/id bears on. commit calls it
// before and after replacing the record, so both the old and the new scope
// are invalidated.
func (m *model) affected(kind, id string, a *affect) {
	switch kind {
	case kindGrants:
		if g := m.grants[id]; g != nil {
			m.grantAffect(g.g, a)
		}
	case kindShares:
		if s := m.shares[id]; s != nil && s.s.Recipient != "" {
			a.pairs[Pair{s.s.Recipient, s.s.Device}] = struct{}{}
		}
	case kindSites:
		if m.sites[id] != nil {
			m.devicesUnder(id, a.devices)
		}
	case kindDevices:
		a.devices[id] = struct{}{}
	case kindSubjects:
		a.subjects[id] = struct{}{}
		for e := range m.employees[id] {
			a.subjects[e] = struct{}{}
		}
	case kindGroups:
		if g := m.groups[id]; g != nil {
			for _, s := range g.Members {
				a.subjects[s] = struct{}{}
			}
		}
	case kindRoles:
		for _, g := range m.grantsRole[id] {
			m.grantAffect(g.g, a)
		}
	case kindOrgs:
		for sid := range m.sites {
			if m.siteOrg(sid) == id {
				for d := range m.siteDevices[sid] {
					a.devices[d] = struct{}{}
				}
			}
		}
	}
}

// shareRecipients adds the recipients of the accepted shares owned by the
// subjects and pairs a names: a share is worth what its owner may do now
// (rule 8), so whatever changes the owner's decision on a device changes
// the recipient's too, and the recipient's cached entry and open sessions
// must be dropped and re-checked with the owner's. Devices a names already
// drop every entry of theirs. Received shares do not count in an owner's
// rights (ownRights), so one level is all there is.
func (m *model) shareRecipients(a *affect) {
	var extra []Pair
	for s := range a.subjects {
		for _, sh := range m.sharesBy[s] {
			if sh.s.State == ShareAccepted && sh.s.Recipient != "" {
				extra = append(extra, Pair{sh.s.Recipient, sh.s.Device})
			}
		}
	}
	for p := range a.pairs {
		for _, sh := range m.sharesBy[p.Subject] {
			if sh.s.Device == p.Device && sh.s.State == ShareAccepted && sh.s.Recipient != "" {
				extra = append(extra, Pair{sh.s.Recipient, sh.s.Device})
			}
		}
	}
	for _, p := range extra {
		a.pairs[p] = struct{}{}
	}
}

// subscriber delivers invalidations to one callback from its own goroutine,
// so a slow subscriber never blocks writers.
type subscriber struct {
	fn      func(Invalidation)
	mu      sync.Mutex
	queue   []Invalidation
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	stopped sync.Once
}

// maxQueued bounds a subscriber's backlog; beyond it the backlog collapses
// into one All event.
const maxQueued = 4096

func (sub *subscriber) run() {
	defer close(sub.done)
	for {
		select {
		case <-sub.quit:
			return
		case <-sub.wake:
		}
		sub.mu.Lock()
		q := sub.queue
		sub.queue = nil
		sub.mu.Unlock()
		for _, inv := range q {
			select {
			case <-sub.quit:
				return
			default:
			}
			sub.fn(inv)
		}
	}
}

func (sub *subscriber) push(inv Invalidation) {
	sub.mu.Lock()
	if len(sub.queue) >= maxQueued {
		sub.queue = append(sub.queue[:0], Invalidation{Rev: inv.Rev, All: true})
	} else {
		sub.queue = append(sub.queue, inv)
	}
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *subscriber) stop() {
	sub.stopped.Do(func() { close(sub.quit) })
	<-sub.done
}

// Subscribe calls fn with every invalidation, in revision order, after the
// new model is visible to Check. cancel stops delivery and waits for a
// running fn to return; do not call it from inside fn.
func (s *Service) Subscribe(fn func(Invalidation)) (cancel func()) {
	sub := &subscriber{fn: fn, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	s.subsMu.Lock()
	if s.closed {
		s.subsMu.Unlock()
		return func() {}
	}
	s.subs[sub] = struct{}{}
	s.subsMu.Unlock()
	go sub.run()
	return func() {
		s.subsMu.Lock()
		delete(s.subs, sub)
		s.subsMu.Unlock()
		sub.stop()
	}
}

// publish is called by the single writer, so events are pushed in order.
func (s *Service) publish(inv Invalidation) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for sub := range s.subs {
		sub.push(inv)
	}
}
