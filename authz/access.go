package authz

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Who may call what (DESIGN §6 "Who may call"). Admin callers are limited by
// the sections snapshotted from their roles and, with individual access, to
// objects they or their reports created. Viewer callers may do only the few
// things a viewer does for itself.

// validSection accepts "{kind}:read", "{kind}:write", "*:read", "*:write" and "*".
func validSection(s string) bool {
	if s == "*" {
		return true
	}
	k, op, ok := strings.Cut(s, ":")
	if !ok || (op != "read" && op != "write") {
		return false
	}
	switch k {
	case "*", "audit", "check", "links", "sessions", "ptz":
		return true
	}
	return IsKind(k)
}

// sectionAllows reports whether a snapshot of sections includes section
// ("devices:read"); write implies read.
func sectionAllows(sections []string, section string) bool {
	k, op, _ := strings.Cut(section, ":")
	for _, s := range sections {
		sk, sop, _ := strings.Cut(s, ":")
		if s == "*" || ((sk == k || sk == "*") && (sop == op || sop == "write")) {
			return true
		}
	}
	return false
}

// withinReach refuses an admin target (what) with more reach than the calling
// admin me: a section me lacks (write implies read, as in sectionAllows), or
// individual access off while me has it on. Root is never limited.
func withinReach(me, target *Admin, what string) error {
	for _, sec := range target.Sections {
		if !sectionAllows(me.Sections, sec) {
			return fmt.Errorf("admin %s cannot create or change %s: it would have more reach (section %s, which the caller lacks): %w", me.ID, what, sec, ErrForbidden)
		}
	}
	if me.Individual && !target.Individual {
		return fmt.Errorf("admin %s has individual access and cannot create or change %s without individual access (individual_access %s resolves to off): %w",
			me.ID, what, string(target.IndividualAccess), ErrForbidden)
	}
	return nil
}

// admin returns the calling admin (nil for root and viewers). An admin deleted
// since authentication is forbidden.
func (r *request) admin() (*Admin, error) {
	if r.c.Admin == "" {
		return nil, nil
	}
	a := r.s.m.admins[r.c.Admin]
	if a == nil {
		return nil, fmt.Errorf("admin %q no longer exists: %w", r.c.Admin, ErrForbidden)
	}
	return a, nil
}

// needSection checks an admin caller's sections. Root passes; viewers are
// handled by each endpoint and fail here.
func (r *request) needSection(section string) error {
	if r.c.Root {
		return nil
	}
	a, err := r.admin()
	if err != nil {
		return err
	}
	if a == nil {
		return fmt.Errorf("viewer %s may not use %s: %w", r.c.Subject, section, ErrForbidden)
	}
	if !sectionAllows(a.Sections, section) {
		return fmt.Errorf("admin %s lacks section %s: %w", a.ID, section, ErrForbidden)
	}
	return nil
}

// needSectionLocked is needSection for handlers that do not hold writeMu.
func (r *request) needSectionLocked(section string) error {
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	return r.needSection(section)
}

// creators is the set of CreatedBy values an individual-access admin may see:
// itself and every admin below it in the reports_to hierarchy. nil = all.
func (r *request) creators() set {
	a, _ := r.admin()
	if a == nil || !a.Individual {
		return nil
	}
	out := set{"admin:" + a.ID: {}}
	for id := range r.s.m.admins {
		for cur, i := r.s.m.admins[id], 0; cur != nil && i < 64; i++ {
			if cur.ReportsTo == a.ID {
				out["admin:"+id] = struct{}{}
				break
			}
			cur = r.s.m.admins[cur.ReportsTo]
		}
	}
	return out
}

func createdBy(obj any) string {
	switch o := obj.(type) {
	case *Org:
		return o.CreatedBy
	case *Site:
		return o.CreatedBy
	case *Device:
		return o.CreatedBy
	case *Subject:
		return o.CreatedBy
	case *Group:
		return o.CreatedBy
	case *Role:
		return o.CreatedBy
	case *Grant:
		return o.CreatedBy
	case *Share:
		return o.CreatedBy
	case *AccessRequest:
		return o.CreatedBy
	case *Admin:
		return o.CreatedBy
	}
	return ""
}

// visible applies individual access to one stored object.
func visible(creators set, obj any) bool {
	if creators == nil {
		return true
	}
	_, ok := creators[createdBy(obj)]
	return ok
}

// visibleRef reports whether an individual-access admin may reference kind/id
// (e.g. grant on a device it did not create).
func (r *request) visibleRef(creators set, kind, id string) bool {
	if creators == nil || id == "" {
		return true
	}
	obj, ok := r.s.m.get(kind, id)
	return ok && visible(creators, obj)
}

// pmOf reports whether the viewer caller is a privacy manager of the site of
// a grant-like target (device or site).
func (r *request) pmOf(device, site string) bool {
	if device != "" {
		d := r.s.m.devices[device]
		if d == nil {
			return false
		}
		site = d.Site
	}
	_, ok := r.s.m.isPrivacyManager(r.c.Subject, site)
	return ok
}

// managesAnySite reports whether subject is a privacy manager of any site.
func (m *model) managesAnySite(subject string) bool {
	for _, s := range m.sites {
		if slices.Contains(s.PrivacyManagers, subject) {
			return true
		}
	}
	return false
}

// authorizeWrite decides whether the caller may replace old with obj (either
// may be nil) in kind. Called with writeMu held.
func (r *request) authorizeWrite(kind string, old, obj any) error {
	if r.c.Subject != "" {
		return r.authorizeViewerWrite(kind, old, obj)
	}
	if err := r.needSection(kind + ":write"); err != nil {
		return err
	}
	cs := r.creators()
	if old != nil && kind != kindRoles && !visible(cs, old) { // roles: see canRead
		// The very answer for a missing record, as GET and DELETE give:
		// a write is no existence oracle either.
		return r.missing(kind, *objID(old))
	}
	if ro, ok := old.(*Role); ok && len(r.s.m.grantsRole[ro.ID]) > 0 {
		// A role's actions are what every grant using it gives: changing
		// them is a change of those grants.
		if n, _ := obj.(*Role); n == nil || !sameActions(ro.Actions, n.Actions) {
			if err := r.needSection("grants:write"); err != nil {
				return fmt.Errorf("role %s is used by grants, so changing its actions changes them: %w", ro.ID, err)
			}
		}
	}
	if ro, ok := old.(*Role); ok && cs != nil {
		// Any admin with roles:read reads and grants with every role, but
		// an edit reaches every grant using the role at once: an
		// individual-access admin changes or deletes only roles it (or its
		// reports) created and whose grants are all within its reach.
		if !visible(cs, ro) {
			return fmt.Errorf("role %s was created by another admin: an individual-access admin uses it but changes only its own roles: %w", ro.ID, ErrForbidden)
		}
		for _, g := range r.s.m.grantsRole[ro.ID] {
			if !visible(cs, g.g) {
				// The grant is not named: this admin may not see it.
				return fmt.Errorf("role %s is used by a grant another admin (or a viewer) made: a change would reach access outside this admin's individual access: %w", ro.ID, ErrForbidden)
			}
		}
	}
	if p, ok := old.(*Admin); ok {
		if me, _ := r.admin(); me != nil {
			if err := withinReach(me, p, "admin "+p.ID); err != nil {
				return err
			}
		}
	}
	// A role template is reach waiting to be assigned: an admin writes only
	// roles within its own sections, and leaves wider ones alone.
	for _, x := range []any{old, obj} {
		if ro, ok := x.(*Role); ok {
			if me, _ := r.admin(); me != nil {
				for i, sec := range ro.Sections {
					if !sectionAllows(me.Sections, sec) {
						return fmt.Errorf("admin %s cannot write role %s with sections[%d] %s, which the caller lacks (it would have more reach): %w", me.ID, ro.ID, i, sec, ErrForbidden)
					}
				}
			}
		}
	}
	if g, ok := obj.(*Grant); ok && cs != nil {
		subjKind := kindSubjects
		if r.s.m.groups[g.Subject] != nil {
			subjKind = kindGroups
		}
		hidden := !r.visibleRef(cs, subjKind, g.Subject) || !r.visibleRef(cs, kindDevices, g.Device) || !r.visibleRef(cs, kindSites, g.Site)
		for _, d := range g.ExceptDevices {
			// Missing and hidden alike: no existence oracle.
			hidden = hidden || !r.visibleRef(cs, kindDevices, d)
		}
		if hidden {
			return fmt.Errorf("grant references an object created by another admin, or one that does not exist (individual access): %w", ErrForbidden)
		}
	}
	return nil
}

// authorizeViewerWrite: privacy managers change grants and privacy settings
// of their sites; holders of share create shares; PRO users request access.
func (r *request) authorizeViewerWrite(kind string, old, obj any) error {
	deny := fmt.Errorf("viewer %s may not change %s: %w", r.c.Subject, kind, ErrForbidden)
	switch kind {
	case kindGrants:
		for _, x := range []any{old, obj} {
			if g, ok := x.(*Grant); ok && !r.pmOf(g.Device, g.Site) {
				if err := r.siteAdminMay(g); err != nil {
					return err
				}
			}
		}
		// Only once the viewer may write here: its answer names devices.
		return r.viewerExcepts(old, obj)
	case kindDevices:
		return r.settingsWrite(old, obj)
	case kindSubjects:
		return r.companySetsRights(old, obj)
	case kindSites:
		o, _ := old.(*Site)
		n, _ := obj.(*Site)
		if o == nil || n == nil || !r.pmOf("", o.ID) {
			return deny
		}
		if o.Org != n.Org || o.Parent != n.Parent || o.Name != n.Name || (n.AlarmWindow != 0 && o.AlarmWindow != n.AlarmWindow) {
			return fmt.Errorf("a privacy manager changes only a site's privacy settings: %w", ErrForbidden)
		}
		// Only admins appoint privacy managers (seed 000: "System admins and
		// PRO users with access to system settings can assign the privacy
		// manager role"); a privacy manager's own token sends the list back
		// unchanged or leaves it out, which keeps it.
		if n.PrivacyManagers == nil {
			n.PrivacyManagers = slices.Clone(o.PrivacyManagers)
		} else if !sameSet(o.PrivacyManagers, n.PrivacyManagers) {
			return fmt.Errorf("a privacy manager cannot appoint or remove privacy managers (privacy_managers); only admins with sites:write do: %w", ErrForbidden)
		}
		return nil
	case kindShares:
		for _, x := range []any{old, obj} {
			if sh, ok := x.(*Share); ok && sh.Owner != r.c.Subject {
				return fmt.Errorf("viewer %s does not own this share: %w", r.c.Subject, ErrForbidden)
			}
		}
		return nil
	case kindRequests:
		if old != nil {
			return deny
		}
		if ar, ok := obj.(*AccessRequest); ok && ar.Requester == r.c.Subject {
			return nil
		}
	}
	return deny
}

// viewerExcepts: a viewer's site grant excepts only devices under its
// site (the others it does not cover), answered alike for a device
// elsewhere and one that does not exist, so except_devices tells a viewer
// nothing about devices it has no rights on. An entry the stored grant
// already had (a camera moved away since) may stay.
func (r *request) viewerExcepts(old, obj any) error {
	g, _ := obj.(*Grant)
	if g == nil || g.Site == "" {
		return nil
	}
	var had []string
	if o, ok := old.(*Grant); ok {
		had = o.ExceptDevices
	}
	m := r.s.m
	for i, d := range g.ExceptDevices {
		if slices.Contains(had, d) {
			continue
		}
		var buf [8]string
		if dev := m.devices[d]; dev == nil || !slices.Contains(m.siteChain(dev.Site, buf[:0]), g.Site) {
			return fieldErr(fmt.Sprintf("except_devices[%d]", i), fmt.Sprintf("no device %q under site %q", d, g.Site))
		}
	}
	return nil
}

// siteAdminMay applies seed 002's Site Admin ("edit site permissions") to
// a viewer writing (or deleting) grant g that is not on a site it manages
// privacy of: it must hold the site_admin role on g's site (or above), by
// its own grant or a group's, in force now; g gives someone else at most
// the actions the viewer itself holds there now, on every device g covers;
// and g's subject is not a privacy manager anywhere g reaches (a site
// admin never touches privacy managers or their rights).
func (r *request) siteAdminMay(g *Grant) error {
	m, me := r.s.m, r.c.Subject
	site := g.Site
	if g.Device != "" {
		d := m.devices[g.Device]
		if d == nil {
			return fmt.Errorf("viewer %s may not change grants on device %s (or it does not exist): %w", me, g.Device, ErrForbidden)
		}
		site = d.Site
	}
	if !m.holdsSiteAdmin(me, site, r.now) {
		return fmt.Errorf("viewer %s is neither a privacy manager nor a site admin of the grant's site: %w", me, ErrForbidden)
	}
	// A group's grant is each member's: a group holding the site admin is
	// a grant of its own (one that outlives its site_admin grant), a group
	// holding a privacy manager changes that manager's rights.
	people := []string{g.Subject}
	if grp := m.groups[g.Subject]; grp != nil {
		people = grp.Members
	}
	for _, p := range people {
		if p == me {
			return fmt.Errorf("a site admin grants others, not itself (%s): %w", g.Subject, ErrForbidden)
		}
		pmOf := ""
		if s, ok := m.isPrivacyManager(p, site); ok {
			pmOf = s
		}
		if g.Device == "" {
			m.walkSites(site, func(s string) {
				if slices.Contains(m.sites[s].PrivacyManagers, p) {
					pmOf = s
				}
			})
		}
		if pmOf != "" {
			return fmt.Errorf("%s is a privacy manager of site %s: a site admin never changes a privacy manager's rights (grant subject %s): %w", p, pmOf, g.Subject, ErrForbidden)
		}
	}
	acts, err := ParseActions(g.Actions)
	if err != nil {
		return fieldErr("actions", err.Error())
	}
	if g.Role != "" {
		acts = m.roleActions(g.Role)
	}
	devices := set{}
	if g.Device != "" {
		devices[g.Device] = struct{}{}
	} else {
		m.devicesUnder(site, devices)
	}
	if len(devices) == 0 && acts&^m.roleActions("site_admin") != 0 {
		return fmt.Errorf("site admin %s gives at most the site_admin role's actions on a site without devices: %w", me, ErrForbidden)
	}
	now := r.now.UnixNano()
	// Footage as old as g reaches back: a site admin limited to recent
	// recordings (footage_within) gives no one older ones.
	footage := int64(0)
	if g.FootageWithin > 0 {
		footage = now - int64(g.FootageWithin)
	}
	for d := range devices {
		own := m.ownRights(me, d, r.now)
		for i := range numActions {
			a := Action(1) << i
			if acts&a == 0 {
				continue
			}
			f := int64(-1)
			if a&(ActionArchive|ActionDownload) != 0 {
				f = footage
			}
			if ok, _, _ := own.decide(a, now, f); !ok {
				return fmt.Errorf("site admin %s may not give %s on %s: it does not hold it itself: %w", me, a, d, ErrForbidden)
			}
		}
	}
	return nil
}

// holdsSiteAdmin reports whether subject holds the site_admin role on site
// or above it now, by its own grant or one of its groups': in its validity
// window and schedule, and, for an armed-only grant, while the grant's site
// is armed (an after_alarm grant makes no standing site admin).
func (m *model) holdsSiteAdmin(subject, site string, now time.Time) bool {
	var buf [8]string
	chain := m.siteChain(site, buf[:0])
	principals := append([]string{subject}, slices.Collect(maps.Keys(m.groupsOf[subject]))...)
	for _, p := range principals {
		for _, s := range chain {
			for _, g := range m.grantsAt[targetKey{principal: p, site: true, id: s}] {
				if g.g.Role != "site_admin" || g.cond == condAfterAlarm || (g.cond == condArmed && !m.liveSites[s].armed.Load()) {
					continue
				}
				if active, _ := activeAt(g.nb, g.na, g.sched, now); active {
					return true
				}
			}
		}
	}
	return false
}

// settingsWrite: a viewer with settings on a device (seed 002's Site Admin
// "change camera settings"; the installers' 8 hours "allowing them to
// configure the device", seed 000) changes its name, recording and PTZ
// login, never its site, kind, source or ONVIF address; it creates and
// deletes no device. Fields left out keep their value.
func (r *request) settingsWrite(old, obj any) error {
	o, _ := old.(*Device)
	n, _ := obj.(*Device)
	me := r.c.Subject
	if o == nil || n == nil {
		return fmt.Errorf("viewer %s may not create or delete devices: %w", me, ErrForbidden)
	}
	own := r.s.m.ownRights(me, o.ID, r.now)
	if ok, _, _ := own.decide(ActionSettings, r.now.UnixNano(), -1); !ok {
		return fmt.Errorf("viewer %s may not change device %s (or it does not exist): %w", me, o.ID, ErrForbidden)
	}
	if n.Site == "" {
		n.Site = o.Site
	}
	if n.Kind == "" {
		n.Kind = o.Kind
	}
	if n.Source == "" || n.Source == redactSource(o.Source) {
		n.Source = o.Source
	}
	if n.Transport == "" {
		n.Transport = o.Transport
	}
	if n.UDPReadBuffer == 0 {
		n.UDPReadBuffer = o.UDPReadBuffer
	}
	if n.UDPReadBuffer != o.UDPReadBuffer {
		// kernel memory of this node, the admin's to spend
		return fmt.Errorf("settings change a device's name, record, transport and PTZ login, not its udp_read_buffer (an admin with devices:write does): %w", ErrForbidden)
	}
	if n.PTZ == nil && o.PTZ != nil {
		p := *o.PTZ
		n.PTZ = &p
	}
	// The ONVIF address is, like the source, an address the gateway dials
	// (and sends credentials to): settings change the PTZ login, not where
	// it goes.
	oldURL, newURL := "", ""
	if o.PTZ != nil {
		oldURL = o.PTZ.OnvifURL
	}
	if n.PTZ != nil {
		newURL = n.PTZ.OnvifURL
	}
	for _, f := range []struct {
		name     string
		old, new string
	}{{"site", o.Site, n.Site}, {"kind", o.Kind, n.Kind}, {"source", o.Source, n.Source}, {"ptz.onvif_url", oldURL, newURL}} {
		if f.old != f.new {
			return fmt.Errorf("settings change a device's name, record and PTZ login, not its %s (an admin with devices:write does): %w", f.name, ErrForbidden)
		}
	}
	return nil
}

// companySetsRights: a company's own token sets the rights of its
// employees (seed 000, "Companies manage their employees' access rights");
// what an employee may do stays the company's access ∩ these rights. Only
// rights change; fields left out keep their value.
func (r *request) companySetsRights(old, obj any) error {
	m, me := r.s.m, r.c.Subject
	o, _ := old.(*Subject)
	n, _ := obj.(*Subject)
	if c := m.subjects[me]; c == nil || c.Kind != SubjectCompany || o == nil || n == nil || o.Kind != SubjectEmployee || o.Company != me {
		return fmt.Errorf("viewer %s may not change subjects (a company sets only its own employees' rights): %w", me, ErrForbidden)
	}
	keep := *o
	keep.Rights = n.Rights
	for _, f := range []struct {
		name    string
		changed bool
	}{
		{"kind", n.Kind != "" && n.Kind != o.Kind},
		{"name", n.Name != "" && n.Name != o.Name},
		{"email", n.Email != "" && n.Email != o.Email},
		{"org", n.Org != "" && n.Org != o.Org},
		{"sites", n.Sites != nil && !slices.Equal(n.Sites, o.Sites)},
		{"company", n.Company != "" && n.Company != o.Company},
		{"restriction_exempt", n.RestrictionExempt != o.RestrictionExempt},
	} {
		if f.changed {
			return fmt.Errorf("a company changes only its employees' rights, not %s: %w", f.name, ErrForbidden)
		}
	}
	*n = keep
	return nil
}

// sameActions reports whether two action lists give the same actions.
func sameActions(a, b []string) bool {
	x, errA := ParseActions(a)
	y, errB := ParseActions(b)
	return errA == nil && errB == nil && x == y
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// canRead decides GET access to one object for the caller.
func (r *request) canRead(kind string, obj any) bool {
	if r.c.Subject != "" {
		switch o := obj.(type) {
		case *Share:
			return o.Owner == r.c.Subject || o.Recipient == r.c.Subject
		case *AccessRequest:
			if o.Requester == r.c.Subject {
				return true
			}
			return slices.ContainsFunc(o.Devices, func(d string) bool { return r.pmOf(d, "") })
		case *Subject:
			return o.ID == r.c.Subject
		case *Device:
			// What a settings holder changes, it may read back (a
			// GET-modify-PUT), secrets redacted as for admins.
			own := r.s.m.ownRights(r.c.Subject, o.ID, r.now)
			ok, _, _ := own.decide(ActionSettings, r.now.UnixNano(), -1)
			return ok
		}
		return false
	}
	if kind == kindRoles {
		// Seed 001's individual-access table does not list roles: "Access
		// to the other sections … falls under the granted access levels".
		return true
	}
	return visible(r.creators(), obj)
}

// readSection is the section a GET of kind needs; viewers pass and are
// filtered object by object.
func (r *request) readSection(kind string) error {
	if r.c.Subject != "" {
		switch kind {
		case kindShares, kindRequests, kindSubjects, kindDevices:
			return nil
		}
	}
	return r.needSection(kind + ":read")
}

// AdminAllows reports whether an admin caller may use an API section the
// gateway serves itself ("links:write", "sessions:read", "ptz:write"): root
// always, an API admin when the sections snapshotted from its roles include
// it, a viewer never (the gateway applies the viewer rules of DESIGN §6).
func (s *Service) AdminAllows(c Caller, section string) bool {
	if c.Root {
		return true
	}
	if c.Admin == "" {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.m.admins[c.Admin]
	return a != nil && sectionAllows(a.Sections, section)
}

// AdminSees reports whether an admin caller's individual access reaches the
// stored object kind/id (for the gateway's own API sections: links,
// sessions, PTZ, media objects). Root and admins without individual access
// see everything; an individual-access admin sees what it or its reports
// created; a viewer caller, or an object that does not exist, is never seen.
func (s *Service) AdminSees(c Caller, kind, id string) bool {
	if c.Subject != "" || (!c.Root && c.Admin == "") {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	obj, ok := s.m.get(kind, id)
	if !ok {
		return false
	}
	if c.Root {
		return true
	}
	r := &request{s: s, c: c}
	if a, err := r.admin(); err != nil || a == nil {
		return false
	}
	return visible(r.creators(), obj)
}

// AdminSeesCreator reports whether an admin caller's individual access
// reaches objects created by createdBy ("root", "admin:<id>", or a subject
// id for what viewers created): the scope of lists of the gateway's own
// objects (links). Root and admins without individual access see all.
func (s *Service) AdminSeesCreator(c Caller, createdBy string) bool {
	if c.Root {
		return true
	}
	if c.Admin == "" {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := &request{s: s, c: c}
	if a, err := r.admin(); err != nil || a == nil {
		return false
	}
	cs := r.creators()
	if cs == nil {
		return true
	}
	_, ok := cs[createdBy]
	return ok
}

// PrivacyManagerOf reports whether subject is a privacy manager of device's
// site (or an ancestor): the typed fact PTZ priority is decided from.
func (s *Service) PrivacyManagerOf(subject, device string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.m.devices[device]
	if d == nil {
		return false
	}
	_, ok := s.m.isPrivacyManager(subject, d.Site)
	return ok
}
