package authz

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Deletes with their cascades, and the action endpoints of DESIGN §6.

func (r *request) del(kind, id string) (opResult, error) {
	r.s.writeMu.Lock()
	defer r.s.writeMu.Unlock()
	if r.c.Subject == "" {
		// Refused before the lookup: no existence oracle without the section.
		if err := r.needSection(kind + ":write"); err != nil {
			return opResult{}, err
		}
	}
	old, ok := r.s.m.get(kind, id)
	if !ok {
		return opResult{}, r.missing(kind, id)
	}
	if r.c.Subject == "" && kind != kindRoles && !visible(r.creators(), old) { // roles: see canRead
		return opResult{}, r.missing(kind, id) // the very answer for a missing one: no existence oracle
	}
	if err := r.authorizeWrite(kind, old, nil); err != nil {
		return opResult{}, err
	}
	changes, err := r.cascade(kind, id)
	if err != nil {
		return opResult{}, err
	}
	if _, err := r.s.commit(r.ctx, changes); err != nil {
		return opResult{}, err
	}
	return opResult{Body: map[string]any{"id": id, "deleted": true}}, nil
}

// cascade returns the delete of kind/id and what goes with it, or a conflict
// when other records still need it.
func (r *request) cascade(kind, id string) ([]change, error) {
	m := r.s.m
	out := []change{{kind, id, nil}}
	inUse := func(what string) error {
		return fmt.Errorf("%s %q is still used by %s: %w", kind, id, what, ErrConflict)
	}
	switch kind {
	case kindOrgs:
		for _, s := range m.sites {
			if s.Org == id {
				return nil, inUse("site " + s.ID)
			}
		}
	case kindSites:
		if len(m.children[id]) > 0 || len(m.siteDevices[id]) > 0 {
			return nil, inUse("sub-sites or devices")
		}
		for gid, g := range m.grants {
			if g.g.Site == id {
				out = append(out, change{kindGrants, gid, nil})
			}
		}
	case kindDevices:
		for gid, g := range m.grants {
			if g.g.Device == id {
				out = append(out, change{kindGrants, gid, nil})
			}
			if _, ok := g.except[id]; ok {
				// A site grant narrowed for the device: a new device of
				// the same id later must not be excepted by surprise.
				c := *g.g
				c.ExceptDevices = slices.DeleteFunc(slices.Clone(c.ExceptDevices), func(d string) bool { return d == id })
				gc, err := compileGrant(&c)
				if err != nil {
					return nil, err
				}
				out = append(out, change{kindGrants, gid, gc})
			}
		}
		for sid, s := range m.shares {
			if s.s.Device == id {
				out = append(out, change{kindShares, sid, nil})
			}
		}
	case kindSubjects:
		return r.cascadeSubject(id, out)
	case kindGroups:
		for gid := range m.grantsOf[id] {
			out = append(out, change{kindGrants, gid, nil})
		}
	case kindRoles:
		if m.roles[id].Builtin {
			return nil, fieldErr("id", "built-in roles cannot be deleted")
		}
		if len(m.grantsRole[id]) > 0 {
			return nil, inUse("grants")
		}
	case kindAdmins:
		for _, a := range m.admins {
			if a.ReportsTo == id {
				return nil, inUse("admin " + a.ID + " (reports_to)")
			}
		}
	}
	return out, nil
}

func (r *request) cascadeSubject(id string, out []change) ([]change, error) {
	m := r.s.m
	if len(m.employees[id]) > 0 {
		return nil, fmt.Errorf("subject %q still has employees: %w", id, ErrConflict)
	}
	for gid := range m.grantsOf[id] {
		out = append(out, change{kindGrants, gid, nil})
	}
	for sid, s := range m.shares {
		if s.s.Owner == id || s.s.Recipient == id {
			out = append(out, change{kindShares, sid, nil})
		}
	}
	for gid := range m.groupsOf[id] {
		g := *m.groups[gid]
		g.Members = slices.DeleteFunc(slices.Clone(g.Members), func(s string) bool { return s == id })
		out = append(out, change{kindGroups, gid, &g})
	}
	for _, site := range m.sites {
		if slices.Contains(site.PrivacyManagers, id) {
			c := *site
			c.PrivacyManagers = slices.DeleteFunc(slices.Clone(c.PrivacyManagers), func(s string) bool { return s == id })
			out = append(out, change{kindSites, c.ID, &c})
		}
	}
	return out, nil
}

// actionSection is the admin section each action needs; ok is false for an
// unknown action.
func actionSection(kind, verb string) (section string, ok bool) {
	switch kind + "/" + verb {
	case "sites/arm", "sites/disarm":
		return "sites:write", true
	case "devices/alarm":
		return "devices:write", true
	case "orgs/allow-provider":
		return "orgs:write", true
	case "shares/accept", "shares/reject":
		return "shares:write", true
	case "access-requests/approve", "access-requests/deny":
		return "access-requests:write", true
	case "subjects/temporary-access":
		return "grants:write", true
	}
	return "", false
}

// action runs verb on kind/id (POST /{kind}/{id}/{verb}, and DELETE
// /subjects/{id}/temporary-access with device as its ?device=).
//
// No existence oracle (issue 15 hole 14): an admin without the action's
// section is refused before the object is looked up; an individual-access
// admin gets the same 404 for an object it does not see as for a missing
// one (as a GET of it answers); a viewer gets the same 403 for a missing
// object as for one it may not act on.
func (r *request) action(kind, id, verb, device string) (opResult, error) {
	section, known := actionSection(kind, verb)
	if !known {
		return opResult{}, fmt.Errorf("%s/%s: %w", kind, verb, ErrNotFound)
	}
	r.s.writeMu.Lock()
	defer r.s.writeMu.Unlock()
	if r.c.Subject == "" {
		if err := r.needSection(section); err != nil {
			return opResult{}, err
		}
	}
	var changes []change
	var body any
	var err error
	if kind == kindSubjects {
		changes, body, err = r.revokeTemporary(id, device)
	} else {
		obj, ok := r.s.m.get(kind, id)
		if !ok {
			return opResult{}, r.missing(kind, id)
		}
		switch kind {
		case kindSites:
			changes, body, err = r.arm(obj.(*Site), verb == "arm")
		case kindDevices:
			changes, body, err = r.alarm(obj.(*Device))
		case kindOrgs:
			changes, body, err = r.allowProvider(obj.(*Org))
		case kindShares:
			changes, body, err = r.answerShare(obj.(*Share), verb == "accept")
		case kindRequests:
			changes, body, err = r.decideRequest(obj.(*AccessRequest), verb == "approve")
		}
	}
	if err != nil {
		return opResult{}, err
	}
	if len(changes) > 0 {
		if _, err := r.s.commit(r.ctx, changes); err != nil {
			return opResult{}, err
		}
	}
	return opResult{Body: body}, nil
}

// missing is the error for a write or action on kind/id that does not
// exist: 404 for admins, and for a viewer the 403 it gets for an object it
// may not change, so a viewer cannot tell the two apart.
func (r *request) missing(kind, id string) error {
	if r.c.Subject != "" {
		return fmt.Errorf("viewer %s may not change %s %q (or it does not exist): %w", r.c.Subject, kind, id, ErrForbidden)
	}
	return fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
}

func (r *request) adminObject(section, kind string, obj any) error {
	if err := r.needSection(section); err != nil {
		return err
	}
	if !visible(r.creators(), obj) {
		// The very answer for a missing object (action's lookup), as a
		// GET of it gives.
		return r.missing(kind, *objID(obj))
	}
	return nil
}

func (r *request) arm(s *Site, armed bool) ([]change, any, error) {
	if err := r.adminObject("sites:write", kindSites, s); err != nil {
		return nil, nil, err
	}
	c := *s
	c.Armed = armed
	return []change{{kindSites, c.ID, &c}}, &c, nil
}

// alarm opens the device's alarm window for the site's alarm_window (rule 2, after_alarm).
func (r *request) alarm(d *Device) ([]change, any, error) {
	if err := r.adminObject("devices:write", kindDevices, d); err != nil {
		return nil, nil, err
	}
	win := 30 * time.Minute
	if s := r.s.m.sites[d.Site]; s != nil && s.AlarmWindow > 0 {
		win = time.Duration(s.AlarmWindow)
	}
	c := *d
	until := r.now.Add(win).UTC()
	c.AlarmUntil = &until
	return []change{{kindDevices, c.ID, &c}}, map[string]any{"device": c.ID, "alarm_until": until}, nil
}

// allowProvider lifts the integrator restriction until the next midnight in
// the org's restriction time zone (rule 9, seed 003).
func (r *request) allowProvider(o *Org) ([]change, any, error) {
	if err := r.adminObject("orgs:write", kindOrgs, o); err != nil {
		return nil, nil, err
	}
	loc, err := parseTZ(o.RestrictionTZ)
	if err != nil {
		return nil, nil, fieldErr("restriction_tz", err.Error())
	}
	c := *o
	until := nextMidnight(r.now, loc).UTC()
	c.ProviderAllowedUntil = &until
	return []change{{kindOrgs, c.ID, &c}}, &c, nil
}

func (r *request) answerShare(sh *Share, accept bool) ([]change, any, error) {
	if r.c.Subject != "" {
		if sh.Recipient != r.c.Subject {
			return nil, nil, fmt.Errorf("share %s is addressed to someone else: %w", sh.ID, ErrForbidden)
		}
	} else if err := r.adminObject("shares:write", kindShares, sh); err != nil {
		return nil, nil, err
	}
	c := *sh
	c.State = ShareRejected
	if accept {
		c.State = ShareAccepted // a rejected share can be accepted later (seed 004)
	}
	cs, err := compileShare(&c)
	if err != nil {
		return nil, nil, err
	}
	return []change{{kindShares, c.ID, cs}}, &c, nil
}

// decideRequest approves (creating one time-limited grant per device) or
// denies a pending access request; only a privacy manager of every device's
// site, or an admin, decides.
func (r *request) decideRequest(ar *AccessRequest, approve bool) ([]change, any, error) {
	if r.c.Subject != "" {
		for _, d := range ar.Devices {
			if !r.pmOf(d, "") {
				return nil, nil, fmt.Errorf("only a privacy manager of device %s's site decides: %w", d, ErrForbidden)
			}
		}
	} else if err := r.adminObject("access-requests:write", kindRequests, ar); err != nil {
		return nil, nil, err
	}
	if ar.State != RequestPending {
		return nil, nil, fmt.Errorf("access request %s is already %s: %w", ar.ID, ar.State, ErrConflict)
	}
	c := *ar
	c.DecidedBy, c.State, c.Grants = r.c.String(), RequestDenied, nil
	changes := []change{{kindRequests, c.ID, &c}}
	if approve {
		c.State = RequestApproved
		until := r.now.Add(time.Duration(ar.Duration)).UTC()
		for _, d := range ar.Devices {
			if r.s.m.devices[d] == nil {
				continue // deleted since the request
			}
			g := &Grant{ID: newID("tmp-"), Subject: ar.Requester, Device: d, Actions: slices.Clone(ar.Actions),
				Condition: "always", NotAfter: &until, Source: SourceRequest, CreatedBy: r.c.String()}
			gc, err := compileGrant(g)
			if err != nil {
				return nil, nil, err
			}
			c.Grants = append(c.Grants, g.ID)
			changes = append(changes, change{kindGrants, g.ID, gc})
		}
	}
	return changes, &c, nil
}

// revokeTemporary removes a subject's temporary access early: on one device
// (?device=) or everywhere ("remove access to all"). A privacy manager
// removes it only on the sites it manages; the answer does not depend on
// whether the subject exists (it lists what was removed), and a viewer that
// manages no site (or not the ?device's site) is refused either way. An
// admin's section was checked by action.
func (r *request) revokeTemporary(subject, device string) ([]change, any, error) {
	m := r.s.m
	cs := r.creators()
	if r.c.Subject != "" {
		if device != "" && !r.pmOf(device, "") {
			return nil, nil, fmt.Errorf("not a privacy manager of device %s's site (or no such device): %w", device, ErrForbidden)
		}
		if device == "" && !m.managesAnySite(r.c.Subject) {
			return nil, nil, fmt.Errorf("viewer %s is not a privacy manager: %w", r.c.Subject, ErrForbidden)
		}
	} else {
		if s, ok := m.subjects[subject]; !ok || !visible(cs, s) {
			return nil, nil, fmt.Errorf("subject %q: %w", subject, ErrNotFound)
		}
		if device != "" && m.devices[device] == nil {
			return nil, nil, fieldErr("device", fmt.Sprintf("no device %q", device))
		}
	}
	var changes []change
	removed := []string{}
	for gid, g := range m.grantsOf[subject] {
		if g.g.Source != SourceAuto && g.g.Source != SourceRequest {
			continue
		}
		if device != "" && g.g.Device != device {
			continue
		}
		if (r.c.Subject != "" && !r.pmOf(g.g.Device, g.g.Site)) || !visible(cs, g.g) {
			continue
		}
		changes = append(changes, change{kindGrants, gid, nil})
		removed = append(removed, gid)
	}
	sort.Strings(removed)
	return changes, map[string]any{"subject": subject, "removed": removed}, nil
}

// TemporaryGrants lists a subject's temporary access still in force
// (GET /subjects/{id}/temporary-access).
func (s *Service) TemporaryGrants(ctx context.Context, c Caller, subject string) ([]*Grant, error) {
	res, err := s.run(ctx, c, "GET", []string{kindSubjects, subject, "temporary-access"}, func(r *request) (opResult, error) {
		return r.listTemporary(subject)
	})
	if err != nil {
		return nil, err
	}
	return res.Body.([]*Grant), nil
}

// listTemporary is the subject's
// temporary access still in force, for its profile (seed 000: "If the
// selected installer has temporary access to camera video, the corresponding
// status will be displayed in their profile"). A viewer sees its own; a
// privacy manager the grants on the sites it manages, for any id (an
// unknown subject simply has none); any other viewer is refused, whether or
// not the subject exists. An admin needs grants:read and sees the subjects
// it sees (404 otherwise, as GET /subjects/{id}).
func (r *request) listTemporary(subject string) (opResult, error) {
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	m := r.s.m
	cs := r.creators()
	if r.c.Subject != "" {
		if subject != r.c.Subject && !m.managesAnySite(r.c.Subject) {
			return opResult{}, fmt.Errorf("viewer %s sees only its own temporary access: %w", r.c.Subject, ErrForbidden)
		}
	} else {
		if err := r.needSection("grants:read"); err != nil {
			return opResult{}, err
		}
		if s, ok := m.subjects[subject]; !ok || !visible(cs, s) {
			return opResult{}, fmt.Errorf("subject %q: %w", subject, ErrNotFound)
		}
	}
	out := []*Grant{}
	for _, g := range m.grantsOf[subject] {
		if (g.g.Source != SourceAuto && g.g.Source != SourceRequest) || (!g.na.IsZero() && !r.now.Before(g.na)) {
			continue
		}
		if r.c.Subject != "" && r.c.Subject != subject && !r.pmOf(g.g.Device, g.g.Site) {
			continue
		}
		if visible(cs, g.g) {
			out = append(out, g.g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return opResult{Body: out}, nil
}

// BulkRequest is a bulk access change (POST /bulk-access): for several
// subjects of one kind × several devices, exactly these actions.
type BulkRequest struct {
	Subjects  []string `json:"subjects"`
	Devices   []string `json:"devices"`
	Actions   []string `json:"actions"`
	Condition string   `json:"condition"`
}

// bulkApply sets, for every subject × device, exactly the selected actions:
// the device-level grants of each pair are replaced by one bulk grant, so
// unselected permissions are revoked even if granted before (rule 7, seed
// 000). One commit: all pairs or none.
func (r *request) bulkApply(b BulkRequest) (opResult, error) {
	b.Subjects, b.Devices = dedupe(b.Subjects), dedupe(b.Devices)
	r.s.writeMu.Lock()
	defer r.s.writeMu.Unlock()
	m := r.s.m
	if len(b.Subjects) == 0 {
		return opResult{}, fieldErr("subjects", "at least one subject is required")
	}
	if len(b.Devices) == 0 {
		return opResult{}, fieldErr("devices", "at least one device is required")
	}
	kind := ""
	for i, s := range b.Subjects {
		sub := m.subjects[s]
		if sub == nil {
			return opResult{}, fieldErr(fmt.Sprintf("subjects[%d]", i), fmt.Sprintf("no subject %q", s))
		}
		if kind != "" && sub.Kind != kind {
			return opResult{}, fieldErr("subjects", "bulk access applies to one kind of subject at a time")
		}
		kind = sub.Kind
	}
	for i, d := range b.Devices {
		if m.devices[d] == nil {
			return opResult{}, fieldErr(fmt.Sprintf("devices[%d]", i), fmt.Sprintf("no device %q", d))
		}
	}
	if err := r.authorizeBulk(&b); err != nil {
		return opResult{}, err
	}
	var changes []change
	created, kept := []string{}, []BulkKept{}
	narrowed := map[string]*Grant{} // the subjects' own site grants, narrowed
	var chainBuf [8]string
	cs := r.creators()
	for _, s := range b.Subjects {
		for _, d := range b.Devices {
			for gid := range m.grantsAt[targetKey{principal: s, id: d}] {
				changes = append(changes, change{kindGrants, gid, nil})
			}
			chain := m.siteChain(m.devices[d].Site, chainBuf[:0])
			for _, site := range chain {
				for gid, g := range m.grantsAt[targetKey{principal: s, site: true, id: site}] {
					if _, out := g.except[d]; out {
						continue
					}
					n := narrowed[gid]
					if n == nil {
						c := *g.g
						c.ExceptDevices = slices.Clone(c.ExceptDevices)
						n = &c
						narrowed[gid] = n
					}
					n.ExceptDevices = append(n.ExceptDevices, d)
				}
			}
			kept = append(kept, m.bulkKeeps(s, d, chain, cs)...)
			if len(b.Actions) == 0 {
				continue
			}
			g := &Grant{ID: newID("bulk-"), Subject: s, Device: d, Actions: b.Actions, Condition: b.Condition,
				Source: SourceBulk, CreatedBy: r.c.String()}
			c, err := compileGrant(g)
			if err == nil {
				err = m.validateGrant(c)
			}
			if err != nil {
				return opResult{}, err
			}
			created = append(created, g.ID)
			changes = append(changes, change{kindGrants, g.ID, c})
		}
	}
	ids := []string{}
	for _, gid := range slices.Sorted(maps.Keys(narrowed)) {
		c, err := compileGrant(narrowed[gid])
		if err != nil {
			return opResult{}, err
		}
		changes = append(changes, change{kindGrants, gid, c})
		if visible(cs, m.grants[gid].g) {
			ids = append(ids, gid)
		}
	}
	if _, err := r.s.commit(r.ctx, changes); err != nil {
		return opResult{}, err
	}
	return opResult{Body: BulkResult{Grants: created, Pairs: len(b.Subjects) * len(b.Devices), Narrowed: ids, Kept: kept}}, nil
}

// BulkKept is access a bulk change left as it was for one subject ×
// device, because it does not come from the subject's own grants.
type BulkKept struct {
	Subject string `json:"subject"`
	Device  string `json:"device"`
	Why     string `json:"why"`             // "privacy manager of site hq", "group crew", "company acme-sec"
	Grant   string `json:"grant,omitempty"` // the grant, unless the caller may not see it
}

// bulkKeeps lists what still reaches subject on device (its site chain)
// besides the subject's own grants: privacy-manager access (rule 4), its
// groups' grants, its company's (named on the subject's own record). Sites,
// groups and grants cs does not see are not named.
func (m *model) bulkKeeps(subject, device string, chain []string, cs set) []BulkKept {
	var out []BulkKept
	// An individual-access caller learns why, not the ids of sites and
	// groups it may not see.
	name := func(what, kind, id string) string {
		if obj, ok := m.get(kind, id); ok && visible(cs, obj) {
			return what + " " + id
		}
		return "a " + what + " another admin made"
	}
	if site, ok := m.isPrivacyManager(subject, m.devices[device].Site); ok {
		out = append(out, BulkKept{Subject: subject, Device: device, Why: "privacy manager of " + name("site", kindSites, site)})
	}
	via := func(principal, what string) {
		keys := []targetKey{{principal: principal, id: device}}
		for _, s := range chain {
			keys = append(keys, targetKey{principal: principal, site: true, id: s})
		}
		for _, k := range keys {
			for _, gid := range slices.Sorted(maps.Keys(m.grantsAt[k])) {
				g := m.grantsAt[k][gid]
				if g.except != nil && has(g.except, device) {
					continue
				}
				kept := BulkKept{Subject: subject, Device: device, Why: what}
				if visible(cs, g.g) {
					kept.Grant = gid
				}
				out = append(out, kept)
			}
		}
	}
	for _, grp := range slices.Sorted(maps.Keys(m.groupsOf[subject])) {
		via(grp, name("group", kindGroups, grp))
	}
	if sub := m.subjects[subject]; sub != nil && sub.Kind == SubjectEmployee && sub.Company != "" {
		via(sub.Company, "company "+sub.Company)
	}
	return out
}

func has(s set, k string) bool { _, ok := s[k]; return ok }

func (r *request) authorizeBulk(b *BulkRequest) error {
	if r.c.Subject != "" {
		for _, d := range b.Devices {
			if !r.pmOf(d, "") {
				return fmt.Errorf("viewer %s is not a privacy manager of device %s's site: %w", r.c.Subject, d, ErrForbidden)
			}
		}
		return nil
	}
	if err := r.needSection("grants:write"); err != nil {
		return err
	}
	cs := r.creators()
	for _, s := range b.Subjects {
		if !r.visibleRef(cs, kindSubjects, s) {
			return fmt.Errorf("subject %s was created by another admin (individual access): %w", s, ErrForbidden)
		}
	}
	for _, d := range b.Devices {
		if !r.visibleRef(cs, kindDevices, d) {
			return fmt.Errorf("device %s was created by another admin (individual access): %w", d, ErrForbidden)
		}
	}
	return nil
}

// checkCaller applies who may ask /check about whom: a viewer only about
// itself (subject "" means itself), an admin with check:read and within
// its individual access. It returns the subject asked about.
func (r *request) checkCaller(subject, device string) (string, error) {
	if subject == "" && r.c.Subject != "" {
		subject = r.c.Subject
	}
	if r.c.Subject != "" {
		if subject != r.c.Subject {
			return "", fmt.Errorf("a viewer asks /check only about itself: %w", ErrForbidden)
		}
	} else if err := r.needSectionLocked("check:read"); err != nil {
		return "", err
	} else if err := r.checkScope(subject, device); err != nil {
		return "", err
	}
	return subject, nil
}

// checkAnswer is the decision as the caller may see it.
func (r *request) checkAnswer(subject, device string, a Action, at time.Time, footage *time.Time) Decision {
	var d Decision
	if footage != nil {
		d = r.s.CheckFootage(subject, device, a, at, *footage)
	} else {
		d = r.s.Check(subject, device, a, at)
	}
	if r.c.Subject != "" && !d.Allowed && strings.HasPrefix(d.Reason, "unknown_device:") {
		// A viewer learns nothing about devices it has no rights on, not
		// even whether they exist (issue 15 hole 14).
		d.Reason = defaultDenyReason(a)
	}
	return d
}

// checkScope applies individual access to /check: an admin that sees only
// what it and its reports created asks only about those subjects and
// devices; anything else, existing or not, is a 404 like a GET of it.
func (r *request) checkScope(subject, device string) error {
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	cs := r.creators()
	if cs == nil {
		return nil
	}
	if !r.visibleRef(cs, kindSubjects, subject) {
		return fmt.Errorf("subject %q: %w", subject, ErrNotFound)
	}
	if !r.visibleRef(cs, kindDevices, device) {
		return fmt.Errorf("device %q: %w", device, ErrNotFound)
	}
	return nil
}

// AuditQuery selects a page of the audit trail.
type AuditQuery struct {
	After   uint64 // entries after this sequence number (0: from the oldest kept)
	Limit   int    // 1..1000; 0 means 100
	Who     string // "" any, else a Caller's String ("admin:ops", "subject:alice")
	Allowed *bool  // nil any, else only allowed or only denied entries
}

// AuditPage is a page of the audit trail, oldest first. Next is the After
// of the next page as a decimal string, "" when this is the last.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    string       `json:"next"`
}

// Audit returns a page of who was allowed or denied what (GET /audit): an
// admin needs audit:read and, with individual access, sees the entries of
// the admins it sees.
func (s *Service) Audit(ctx context.Context, c Caller, q AuditQuery) (AuditPage, error) {
	res, err := s.run(ctx, c, "GET", []string{"audit"}, func(r *request) (opResult, error) { return r.auditPage(q) })
	if err != nil {
		return AuditPage{}, err
	}
	return res.Body.(AuditPage), nil
}

func (r *request) auditPage(q AuditQuery) (opResult, error) {
	if err := r.needSectionLocked("audit:read"); err != nil {
		return opResult{}, err
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > 1000 {
		return opResult{}, fieldErr("limit", "want 1..1000")
	}
	// Individual access (seed 001, "Reports > User activity: the report
	// includes only the users originated by the current administrator"):
	// the entries of the admins it sees and of the subjects they created.
	r.s.mu.RLock()
	who := r.creators()
	if who != nil {
		for id, sub := range r.s.m.subjects {
			if visible(who, sub) {
				who["subject:"+id] = struct{}{}
			}
		}
	}
	r.s.mu.RUnlock()
	// An id is reused after a delete: the entries of a deleted subject or
	// admin are not those of the one its id now names, which this admin
	// may have created.
	var gone map[string]uint64
	if who != nil {
		gone = map[string]uint64{}
		r.s.audit.page(0, 1<<30, func(e *AuditEntry) bool {
			if rest, ok := strings.CutPrefix(e.What, "DELETE "); ok && e.Allowed {
				if kind, id, ok := strings.Cut(rest, "/"); ok && (kind == kindSubjects || kind == kindAdmins) && !strings.Contains(id, "/") {
					gone[strings.TrimSuffix(kind, "s")+":"+id] = e.Seq
				}
			}
			return false
		})
	}
	entries, next := r.s.audit.page(q.After, q.Limit, func(e *AuditEntry) bool {
		if q.Who != "" && e.Who != q.Who {
			return false
		}
		if q.Allowed != nil && e.Allowed != *q.Allowed {
			return false
		}
		_, mine := who[e.Who]
		return who == nil || (mine && e.Seq > gone[e.Who])
	})
	return opResult{Body: AuditPage{Entries: entries, Next: next}}, nil
}

func dedupe(xs []string) []string {
	seen := set{}
	out := xs[:0:0]
	for _, x := range xs {
		if _, ok := seen[x]; !ok {
			seen[x] = struct{}{}
			out = append(out, x)
		}
	}
	return out
}
