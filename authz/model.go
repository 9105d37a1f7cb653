package authz

import (
	"sync/atomic"
	"time"
)

// condition is when a grant's actions apply (rule 2).
type condition uint8

const (
	condAlways condition = iota
	condArmed
	condAfterAlarm
	// condOwner: a share's term, which holds only while its owner may do the
	// action and may share the device (rule 8); never set by a grant.
	condOwner
)

func parseCondition(s string) (condition, bool) {
	switch s {
	case "", "always":
		return condAlways, true
	case "armed":
		return condArmed, true
	case "after_alarm":
		return condAfterAlarm, true
	}
	return 0, false
}

// grantC is a Grant with its fields parsed once, at write time.
type grantC struct {
	g       *Grant
	actions Action // explicit actions; a role is resolved at evaluation
	cond    condition
	sched   []window
	nb, na  time.Time
	footage time.Duration
	except  set // ExceptDevices; nil: none
}

// shareC is a Share with its fields parsed once.
type shareC struct {
	s       *Share
	actions Action
	sched   []window
}

// targetKey indexes grants by (principal, device or site).
type targetKey struct {
	principal string
	site      bool
	id        string
}

// Pair names one (subject, device) decision cache entry.
type Pair struct {
	Subject string `json:"subject"`
	Device  string `json:"device"`
}

// liveSite and liveDevice hold the state the cached decisions read at request
// time (armed, alarm window), so arming or an alarm needs no cache flush.
// The pointers are stable for the life of the Service.
type liveSite struct{ armed atomic.Bool }
type liveDevice struct{ alarmUntil atomic.Int64 } // unix nanoseconds; 0 = no window

type set = map[string]struct{}

func setAdd(m map[string]set, k, v string) {
	s := m[k]
	if s == nil {
		s = set{}
		m[k] = s
	}
	s[v] = struct{}{}
}

func setDel(m map[string]set, k, v string) {
	if s := m[k]; s != nil {
		delete(s, v)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// model is the permission model in memory with its indexes. It is guarded by
// Service.mu: evaluations hold the read lock, the single writer the write lock.
type model struct {
	orgs     map[string]*Org
	sites    map[string]*Site
	devices  map[string]*Device
	subjects map[string]*Subject
	groups   map[string]*Group
	roles    map[string]*Role
	roleAct  map[string]Action // parsed Role.Actions
	grants   map[string]*grantC
	shares   map[string]*shareC
	requests map[string]*AccessRequest
	admins   map[string]*Admin

	grantsAt    map[targetKey]map[string]*grantC
	grantsOf    map[string]map[string]*grantC // by principal
	grantsRole  map[string]map[string]*grantC // by role
	groupsOf    map[string]set                // subject → groups
	employees   map[string]set                // company → employees
	children    map[string]set                // site → child sites
	siteDevices map[string]set                // site → devices directly in it
	byEmail     map[string]string             // email → subject
	siteMembers map[string]set                // site → subjects listing it in sites
	sharesFor   map[Pair]map[string]*shareC   // (recipient, device) → shares
	sharesBy    map[string]map[string]*shareC // owner → shares
	adminByHash map[string]string
	liveSites   map[string]*liveSite
	liveDevices map[string]*liveDevice
}

func newModel() *model {
	m := &model{
		orgs: map[string]*Org{}, sites: map[string]*Site{}, devices: map[string]*Device{},
		subjects: map[string]*Subject{}, groups: map[string]*Group{}, roles: map[string]*Role{},
		roleAct: map[string]Action{},
		grants:  map[string]*grantC{}, shares: map[string]*shareC{}, requests: map[string]*AccessRequest{},
		admins: map[string]*Admin{},

		grantsAt: map[targetKey]map[string]*grantC{}, grantsOf: map[string]map[string]*grantC{},
		grantsRole: map[string]map[string]*grantC{}, groupsOf: map[string]set{}, employees: map[string]set{},
		children: map[string]set{}, siteDevices: map[string]set{}, byEmail: map[string]string{},
		siteMembers: map[string]set{},
		sharesFor:   map[Pair]map[string]*shareC{}, sharesBy: map[string]map[string]*shareC{}, adminByHash: map[string]string{},
		liveSites: map[string]*liveSite{}, liveDevices: map[string]*liveDevice{},
	}
	for _, r := range builtinRoles() {
		m.put(kindRoles, r.ID, r)
	}
	return m
}

// builtinRoles are the site roles of seed 002, ordered lowest to highest.
func builtinRoles() []*Role {
	return []*Role{
		{ID: "no_access", Actions: []string{}, Builtin: true},
		{ID: "live_only_viewer", Actions: []string{"live", "sound"}, Builtin: true},
		{ID: "site_viewer", Actions: []string{"live", "sound", "archive", "download"}, Builtin: true},
		{ID: "site_admin", Actions: []string{"live", "sound", "archive", "download", "ptz", "share", "settings"}, Builtin: true},
	}
}

func (m *model) liveSite(id string) *liveSite {
	l := m.liveSites[id]
	if l == nil {
		l = &liveSite{}
		m.liveSites[id] = l
	}
	return l
}

func (m *model) liveDevice(id string) *liveDevice {
	l := m.liveDevices[id]
	if l == nil {
		l = &liveDevice{}
		m.liveDevices[id] = l
	}
	return l
}

func grantTarget(g *Grant) targetKey {
	if g.Site != "" {
		return targetKey{principal: g.Subject, site: true, id: g.Site}
	}
	return targetKey{principal: g.Subject, id: g.Device}
}

// put replaces (obj != nil) or deletes (obj == nil) one record, keeping every
// index in step. obj has been validated (or loaded from the store).
func (m *model) put(kind, id string, obj any) {
	m.remove(kind, id)
	if obj == nil {
		return
	}
	switch o := obj.(type) {
	case *Org:
		m.orgs[id] = o
	case *Site:
		m.sites[id] = o
		if o.Parent != "" {
			setAdd(m.children, o.Parent, id)
		}
		m.liveSite(id).armed.Store(o.Armed)
	case *Device:
		m.devices[id] = o
		setAdd(m.siteDevices, o.Site, id)
		m.liveSite(o.Site) // evaluations read it under the read lock; create it here
		var until int64
		if o.AlarmUntil != nil {
			until = o.AlarmUntil.UnixNano()
		}
		m.liveDevice(id).alarmUntil.Store(until)
	case *Subject:
		m.subjects[id] = o
		if o.Email != "" {
			m.byEmail[o.Email] = id
		}
		if o.Kind == SubjectEmployee && o.Company != "" {
			setAdd(m.employees, o.Company, id)
		}
		for _, site := range o.Sites {
			setAdd(m.siteMembers, site, id)
		}
	case *Group:
		m.groups[id] = o
		for _, s := range o.Members {
			setAdd(m.groupsOf, s, id)
		}
	case *Role:
		m.roles[id] = o
		m.roleAct[id], _ = ParseActions(o.Actions)
	case *grantC:
		m.grants[id] = o
		k := grantTarget(o.g)
		addGrant(m.grantsAt, k, o)
		addGrant(m.grantsOf, o.g.Subject, o)
		if o.g.Role != "" {
			addGrant(m.grantsRole, o.g.Role, o)
		}
	case *shareC:
		m.shares[id] = o
		if o.s.Recipient != "" {
			p := Pair{o.s.Recipient, o.s.Device}
			if m.sharesFor[p] == nil {
				m.sharesFor[p] = map[string]*shareC{}
			}
			m.sharesFor[p][id] = o
		}
		if m.sharesBy[o.s.Owner] == nil {
			m.sharesBy[o.s.Owner] = map[string]*shareC{}
		}
		m.sharesBy[o.s.Owner][id] = o
	case *AccessRequest:
		m.requests[id] = o
	case *Admin:
		m.admins[id] = o
		if o.KeyHash != "" {
			m.adminByHash[o.KeyHash] = id
		}
	}
}

func addGrant[K comparable](idx map[K]map[string]*grantC, k K, g *grantC) {
	s := idx[k]
	if s == nil {
		s = map[string]*grantC{}
		idx[k] = s
	}
	s[g.g.ID] = g
}

func delGrant[K comparable](idx map[K]map[string]*grantC, k K, id string) {
	if s := idx[k]; s != nil {
		delete(s, id)
		if len(s) == 0 {
			delete(idx, k)
		}
	}
}

func (m *model) remove(kind, id string) {
	switch kind {
	case kindOrgs:
		delete(m.orgs, id)
	case kindSites:
		if o := m.sites[id]; o != nil {
			setDel(m.children, o.Parent, id)
			delete(m.sites, id)
		}
	case kindDevices:
		if o := m.devices[id]; o != nil {
			setDel(m.siteDevices, o.Site, id)
			delete(m.devices, id)
		}
	case kindSubjects:
		if o := m.subjects[id]; o != nil {
			if m.byEmail[o.Email] == id {
				delete(m.byEmail, o.Email)
			}
			setDel(m.employees, o.Company, id)
			for _, site := range o.Sites {
				setDel(m.siteMembers, site, id)
			}
			delete(m.subjects, id)
		}
	case kindGroups:
		if o := m.groups[id]; o != nil {
			for _, s := range o.Members {
				setDel(m.groupsOf, s, id)
			}
			delete(m.groups, id)
		}
	case kindRoles:
		delete(m.roles, id)
		delete(m.roleAct, id)
	case kindGrants:
		if o := m.grants[id]; o != nil {
			delGrant(m.grantsAt, grantTarget(o.g), id)
			delGrant(m.grantsOf, o.g.Subject, id)
			delGrant(m.grantsRole, o.g.Role, id)
			delete(m.grants, id)
		}
	case kindShares:
		if o := m.shares[id]; o != nil {
			p := Pair{o.s.Recipient, o.s.Device}
			if s := m.sharesFor[p]; s != nil {
				delete(s, id)
				if len(s) == 0 {
					delete(m.sharesFor, p)
				}
			}
			if s := m.sharesBy[o.s.Owner]; s != nil {
				delete(s, id)
				if len(s) == 0 {
					delete(m.sharesBy, o.s.Owner)
				}
			}
			delete(m.shares, id)
		}
	case kindRequests:
		delete(m.requests, id)
	case kindAdmins:
		if o := m.admins[id]; o != nil {
			delete(m.adminByHash, o.KeyHash)
			delete(m.admins, id)
		}
	}
}

// get returns the record of kind/id as stored (grants and shares unwrapped).
func (m *model) get(kind, id string) (any, bool) {
	var v any
	var ok bool
	switch kind {
	case kindOrgs:
		v, ok = m.orgs[id]
	case kindSites:
		v, ok = m.sites[id]
	case kindDevices:
		v, ok = m.devices[id]
	case kindSubjects:
		v, ok = m.subjects[id]
	case kindGroups:
		v, ok = m.groups[id]
	case kindRoles:
		v, ok = m.roles[id]
	case kindGrants:
		var g *grantC
		if g, ok = m.grants[id]; ok {
			v = g.g
		}
	case kindShares:
		var s *shareC
		if s, ok = m.shares[id]; ok {
			v = s.s
		}
	case kindRequests:
		v, ok = m.requests[id]
	case kindAdmins:
		v, ok = m.admins[id]
	}
	return v, ok
}

// siteChain returns the site and its ancestors, nearest first. Cycles are
// rejected at write time; the depth bound guards against a corrupt store.
func (m *model) siteChain(site string, buf []string) []string {
	for site != "" && len(buf) < 64 {
		s := m.sites[site]
		if s == nil {
			break
		}
		buf = append(buf, site)
		site = s.Parent
	}
	return buf
}

// siteOrg is the org of a site: its own or its nearest ancestor's.
func (m *model) siteOrg(site string) string {
	for i := 0; site != "" && i < 64; i++ {
		s := m.sites[site]
		if s == nil {
			return ""
		}
		if s.Org != "" {
			return s.Org
		}
		site = s.Parent
	}
	return ""
}

// devicesUnder adds every device of site and of its sub-sites to out.
func (m *model) devicesUnder(site string, out set) {
	m.walkSites(site, func(s string) {
		for d := range m.siteDevices[s] {
			out[d] = struct{}{}
		}
	})
}

func (m *model) walkSites(site string, fn func(string)) {
	seen := set{}
	var walk func(string)
	walk = func(s string) {
		if _, ok := seen[s]; ok {
			return
		}
		seen[s] = struct{}{}
		fn(s)
		for c := range m.children[s] {
			walk(c)
		}
	}
	walk(site)
}

// isPrivacyManager reports whether subject manages privacy on site or an ancestor.
func (m *model) isPrivacyManager(subject, site string) (string, bool) {
	var buf [8]string
	for _, s := range m.siteChain(site, buf[:0]) {
		for _, pm := range m.sites[s].PrivacyManagers {
			if pm == subject {
				return s, true
			}
		}
	}
	return "", false
}

// roleActions resolves a role name to its actions (unknown → none).
func (m *model) roleActions(role string) Action {
	return m.roleAct[role]
}
