package authz

import (
	"fmt"
	"time"
)

// The evaluator: given the model (read lock held), a subject, a device and an
// instant, it builds the cache entry that answers every action. Each rule of
// DESIGN §4 contributes terms (what it allows, under which live condition,
// with which reason) and time edges (when it starts or stops applying);
// rules that take access away (integrator restriction, photo setting) set
// entry-wide denials. Adding a rule means adding a contribution here.

type evaluation struct {
	m      *model
	e      *entry
	now    time.Time
	sub    *Subject
	dev    *Device
	site   *liveSite
	device *liveDevice
	chain  []string
}

// evaluate computes a fresh entry for (subject, device) at now.
func (m *model) evaluate(subject, device string, now time.Time) *entry {
	return m.evaluateWith(subject, device, now, true)
}

// ownRights is what subject may do on device by its own rules: everything
// but the shares it received. It is what a share of subject is worth (rule
// 8); leaving received shares out keeps the owner's rights from depending on
// other shares, so two users sharing with each other cannot lift each other.
func (m *model) ownRights(subject, device string, now time.Time) *entry {
	return m.evaluateWith(subject, device, now, false)
}

func (m *model) evaluateWith(subject, device string, now time.Time, withShares bool) *entry {
	e := &entry{from: now.UnixNano()}
	for i := range e.static {
		e.static[i] = -1
	}
	sub, dev := m.subjects[subject], m.devices[device]
	if sub == nil {
		e.denyWhy = "unknown_subject: no subject " + subject
		return e
	}
	if dev == nil {
		e.denyWhy = "unknown_device: no device " + device
		return e
	}
	var chainBuf [8]string
	ev := &evaluation{m: m, e: e, now: now, sub: sub, dev: dev,
		site: m.liveSites[dev.Site], device: m.liveDevices[device],
		chain: m.siteChain(dev.Site, chainBuf[:0])}
	if ev.site == nil || ev.device == nil { // cannot happen: put creates them
		e.denyWhy = "unknown_device: device state missing for " + device
		return e
	}
	restrictedUntil, denied := ev.integratorRestriction()
	if denied {
		return e
	}
	ev.privacyManager()
	ev.grantsOf(subject, ActionAll, "")
	for g := range m.groupsOf[subject] {
		ev.grantsOf(g, ActionAll, " via group "+g)
	}
	if sub.Kind == SubjectEmployee && sub.Company != "" {
		rights, _ := ParseActions(sub.Rights)
		ev.grantsOf(sub.Company, rights, " to company "+sub.Company+" ∩ the employee's rights "+rights.String())
	}
	if withShares {
		ev.shares()
	}
	if dev.Kind == DeviceMotionCam {
		if s := m.sites[dev.Site]; s != nil && !s.PhotosOnDemand {
			e.blocked |= ActionPhotoOnDemand
			e.blockedWhy = "photo_on_demand_disabled: site " + dev.Site + " does not allow photos on demand"
		}
	}
	for i := range e.edges {
		e.edges[i] = minNS(e.edges[i], restrictedUntil)
		e.expires = minNS(e.expires, e.edges[i])
	}
	e.setStatic()
	return e
}

// setStatic finds, per action, a term that allows it with no live condition
// and no footage limit: the answer is then fixed for the entry's life and
// decide returns it without scanning terms.
func (e *entry) setStatic() {
	for i := range e.static {
		e.static[i] = -1
		for j := range e.terms {
			t := &e.terms[j]
			if j <= 127 && t.actions&(1<<i) != 0 && t.cond == condAlways && t.footage == 0 {
				e.static[i] = int8(j)
				break
			}
		}
	}
}

// addEdge records that the rule giving acts changes by time at ns.
func (ev *evaluation) addEdge(acts Action, ns int64) {
	if ns == 0 {
		return
	}
	for i := range numActions {
		if acts&(1<<i) != 0 {
			ev.e.edges[i] = minNS(ev.e.edges[i], ns)
		}
	}
}

// integratorRestriction applies rule 9 (seed 003). It returns the instant the
// current allowance lapses, or denied when the org restricts its provider now.
func (ev *evaluation) integratorRestriction() (int64, bool) {
	if ev.sub.Kind != SubjectIntegrator || ev.sub.RestrictionExempt {
		return 0, false
	}
	orgID := ev.m.siteOrg(ev.dev.Site)
	org := ev.m.orgs[orgID]
	// provider_restriction: false (refused on write since; it once switched
	// the lock off for good) is ignored: the lock always returns at midnight.
	if org == nil || orgID == ev.sub.Org {
		return 0, false
	}
	if org.ProviderAllowedUntil == nil || !ev.now.Before(*org.ProviderAllowedUntil) {
		ev.e.denyWhy = "integrator_restriction: org " + orgID +
			" does not allow its service provider now (a client admin's allow-provider lifts it until midnight " +
			org.RestrictionTZ + ")"
		return 0, true
	}
	return org.ProviderAllowedUntil.UnixNano(), false
}

// privacyManager applies rule 4 (seed 000): full access to the site's video
// devices, which no grant takes away (grants only ever add terms).
func (ev *evaluation) privacyManager() {
	site, ok := ev.m.isPrivacyManager(ev.sub.ID, ev.dev.Site)
	if !ok {
		return
	}
	acts := ActionManagePrivacy
	if ev.dev.Kind == DeviceCamera {
		acts = actionsVideo
	}
	ev.e.terms = append(ev.e.terms, term{actions: acts,
		reason: "privacy_manager: " + ev.sub.ID + " manages privacy of site " + site})
}

// activeAt applies a validity window and a weekly schedule at now; edge is the
// next instant that could change the answer (0 = none).
func activeAt(nb, na time.Time, sched []window, now time.Time) (bool, int64) {
	if !nb.IsZero() && now.Before(nb) {
		return false, nb.UnixNano()
	}
	if !na.IsZero() && !now.Before(na) {
		return false, 0
	}
	var edge int64
	if !na.IsZero() {
		edge = na.UnixNano()
	}
	active, next := scheduleAt(sched, now)
	if !next.IsZero() {
		edge = minNS(edge, next.UnixNano())
	}
	return active, edge
}

// grantsOf adds the grants of principal (the subject, one of its groups, or
// an employee's company) on the device and every site above it (rules 2, 3, 5, 6).
func (ev *evaluation) grantsOf(principal string, mask Action, via string) {
	ev.grantsAt(targetKey{principal: principal, id: ev.dev.ID}, mask, via)
	for _, s := range ev.chain {
		ev.grantsAt(targetKey{principal: principal, site: true, id: s}, mask, via)
	}
}

func (ev *evaluation) grantsAt(k targetKey, mask Action, via string) {
	for _, g := range ev.m.grantsAt[k] {
		if g.except != nil {
			if _, out := g.except[ev.dev.ID]; out {
				continue
			}
		}
		acts := g.actions
		if g.g.Role != "" {
			acts = ev.m.roleAct[g.g.Role]
		}
		acts &= mask
		if acts == 0 {
			continue
		}
		active, edge := activeAt(g.nb, g.na, g.sched, ev.now)
		ev.addEdge(acts, edge)
		if !active {
			continue
		}
		ev.e.terms = append(ev.e.terms, ev.grantTerm(g, acts, k, via))
	}
}

func (ev *evaluation) grantTerm(g *grantC, acts Action, k targetKey, via string) term {
	rule, what := "grant", acts.String()
	switch {
	case g.g.Source == SourceAuto || g.g.Source == SourceRequest:
		rule = "temporary_access"
	case g.g.Role != "":
		rule, what = "role", "role "+g.g.Role+" ("+acts.String()+")"
	}
	if via != "" && via[1] == 't' { // " to company ..."
		rule = "company_employee"
	}
	target := "device " + k.id
	if k.site {
		target = "site " + k.id
	}
	reason := fmt.Sprintf("%s: grant %s gives %s on %s%s", rule, g.g.ID, what, target, via)
	if !g.na.IsZero() {
		reason += " until " + g.na.UTC().Format(time.RFC3339)
	}
	t := term{actions: acts, cond: g.cond, footage: g.footage, reason: reason}
	switch g.cond {
	case condArmed:
		t.armed = &ev.site.armed
		t.condReason = "condition_armed: grant " + g.g.ID + " applies only while site " + ev.dev.Site + " is armed"
	case condAfterAlarm:
		t.alarm = &ev.device.alarmUntil
		t.condReason = "condition_after_alarm: grant " + g.g.ID + " applies only inside an alarm window of device " + ev.dev.ID
	}
	if g.footage > 0 {
		t.footReason = "footage_within: grant " + g.g.ID + " reaches back only " + time.Duration(g.footage).String()
	}
	return t
}

// shares adds accepted shares of the device to the subject (rule 8, seed
// 004). A share is worth at most what its owner may do now: its term carries
// the owner's own entry, consulted at request time (conditions, schedules,
// validity and footage limits of the owner's rules), and gives nothing once
// the owner may no longer share the device. The owner's time edges bound the
// share's, so the entry, and every session on it, is re-checked when the
// owner's rights change by time; a write that changes them names the
// recipient (see shareRecipients).
func (ev *evaluation) shares() {
	for _, sh := range ev.m.sharesFor[Pair{ev.sub.ID, ev.dev.ID}] {
		if sh.s.State != ShareAccepted {
			continue
		}
		var na time.Time
		if sh.s.ActiveUntil != nil {
			na = *sh.s.ActiveUntil
		}
		active, edge := activeAt(time.Time{}, na, sh.sched, ev.now)
		ev.addEdge(sh.actions, edge)
		if !active {
			continue
		}
		owner := ev.m.ownRights(sh.s.Owner, ev.dev.ID, ev.now)
		ev.addEdge(sh.actions, owner.edges[ActionShare.index()])
		for i := range numActions {
			if sh.actions&(1<<i) != 0 {
				ev.e.edges[i] = minNS(ev.e.edges[i], owner.edges[i])
			}
		}
		ev.e.terms = append(ev.e.terms, term{actions: sh.actions, cond: condOwner, owner: owner,
			reason: "share: share " + sh.s.ID + " from " + sh.s.Owner + " gives " + sh.actions.String() +
				", at most what " + sh.s.Owner + " may do now",
			condReason: "share_owner_lacks: share " + sh.s.ID + " gives only what its owner " + sh.s.Owner +
				" may do on " + ev.dev.ID + " now, and " + sh.s.Owner + " may not do this",
			lostReason: "share_owner_lost_share: " + sh.s.Owner + " may no longer share " + ev.dev.ID +
				", so share " + sh.s.ID + " gives nothing"})
	}
}
