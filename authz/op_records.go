package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"
)

// The generic record operations: get one, list, create or replace, delete,
// with per-kind validation, read-only fields and cascades.

// NewRecord returns a pointer to a zero record of kind (*Org for KindOrgs
// …), or nil when kind is not a record kind: what a transport decodes a
// body into before Put.
func NewRecord(kind string) any {
	switch kind {
	case kindOrgs:
		return &Org{}
	case kindSites:
		return &Site{}
	case kindDevices:
		return &Device{}
	case kindSubjects:
		return &Subject{}
	case kindGroups:
		return &Group{}
	case kindRoles:
		return &Role{}
	case kindGrants:
		return &Grant{}
	case kindShares:
		return &Share{}
	case kindRequests:
		return &AccessRequest{}
	case kindAdmins:
		return &Admin{}
	}
	return nil
}

func objID(obj any) *string {
	switch o := obj.(type) {
	case *Org:
		return &o.ID
	case *Site:
		return &o.ID
	case *Device:
		return &o.ID
	case *Subject:
		return &o.ID
	case *Group:
		return &o.ID
	case *Role:
		return &o.ID
	case *Grant:
		return &o.ID
	case *Share:
		return &o.ID
	case *AccessRequest:
		return &o.ID
	case *Admin:
		return &o.ID
	}
	return new(string)
}

func idPrefix(kind string) string {
	switch kind {
	case kindGrants:
		return "g-"
	case kindShares:
		return "sh-"
	case kindRequests:
		return "req-"
	case kindAdmins:
		return "adm-"
	}
	return kind[:1] + "-"
}

// view is what the API returns for a stored object.
func view(obj any) any {
	switch o := obj.(type) {
	case *Device:
		c := copyDevice(o)
		if c.PTZ != nil && c.PTZ.Password != "" {
			c.PTZ.Password = redactedPassword
		}
		c.Source = redactSource(c.Source)
		return &c
	case *Admin:
		c := *o
		c.KeyHash = ""
		return &c
	case *grantC:
		return o.g
	case *shareC:
		return o.s
	}
	return obj
}

// View is what a reader is shown of a stored record: a device's secrets
// redacted, an admin's key hash removed.
func View(rec any) any { return view(rec) }

// Get returns kind/id as the caller may see it (View): ErrNotFound when it
// does not exist or the caller may not read it (individual access), and
// ErrForbidden without the kind's read section.
func (s *Service) Get(ctx context.Context, c Caller, kind, id string) (any, error) {
	if !IsKind(kind) {
		return nil, fmt.Errorf("kind %q: %w", kind, ErrNotFound)
	}
	res, err := s.run(ctx, c, "GET", []string{kind, id}, func(r *request) (opResult, error) { return r.get(kind, id) })
	return res.Body, err
}

// ListFilter keeps the records whose named fields equal the given values.
// The fields each kind filters on: devices site, kind; subjects kind, org,
// email; sites org, parent; grants subject, device, site, source; shares
// owner, recipient, state, device; access-requests requester, state.
// Other names are ignored.
type ListFilter map[string]string

// List returns the records of kind the caller may see (View), sorted by
// id, that match f.
func (s *Service) List(ctx context.Context, c Caller, kind string, f ListFilter) ([]any, error) {
	if !IsKind(kind) {
		return nil, fmt.Errorf("kind %q: %w", kind, ErrNotFound)
	}
	res, err := s.run(ctx, c, "GET", []string{kind}, func(r *request) (opResult, error) { return r.list(kind, f) })
	if err != nil {
		return nil, err
	}
	return res.Body.([]any), nil
}

// Put creates (id "": taken from the record, or generated) or replaces
// kind/id with the record fresh returns, a pointer of NewRecord(kind)'s
// type; fresh is called again for each commit attempt, so it must return
// a new copy each time. guard, when not nil, sees the stored record (nil
// when there is none) once the caller is authorized, and may refuse the
// write (the JSON transport refuses read-only fields there). It returns
// the record as stored (View) and whether it was created.
func (s *Service) Put(ctx context.Context, c Caller, kind, id string, fresh func() any, guard func(old any) error) (rec any, created bool, _ error) {
	if !IsKind(kind) {
		return nil, false, fmt.Errorf("kind %q: %w", kind, ErrNotFound)
	}
	method, parts := "PUT", []string{kind, id}
	if id == "" {
		method, parts = "POST", []string{kind}
	}
	res, err := s.run(ctx, c, method, parts, func(r *request) (opResult, error) {
		return r.putObject(kind, id, fresh(), guard)
	})
	if err != nil {
		return nil, false, err
	}
	return res.Body, res.Created, nil
}

func (r *request) get(kind, id string) (opResult, error) {
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	if err := r.readSection(kind); err != nil {
		return opResult{}, err
	}
	obj, ok := r.s.m.get(kind, id)
	if !ok || !r.canRead(kind, obj) {
		return opResult{}, fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
	}
	return opResult{Body: view(obj)}, nil
}

// listFilter reports whether obj matches f.
func listFilter(obj any, f ListFilter) bool {
	match := func(name, v string) bool { want := f[name]; return want == "" || want == v }
	switch o := obj.(type) {
	case *Device:
		return match("site", o.Site) && match("kind", o.Kind)
	case *Subject:
		return match("kind", o.Kind) && match("org", o.Org) && match("email", o.Email)
	case *Site:
		return match("org", o.Org) && match("parent", o.Parent)
	case *Grant:
		return match("subject", o.Subject) && match("device", o.Device) && match("site", o.Site) && match("source", o.Source)
	case *Share:
		return match("owner", o.Owner) && match("recipient", o.Recipient) && match("state", o.State) && match("device", o.Device)
	case *AccessRequest:
		return match("requester", o.Requester) && match("state", o.State)
	}
	return true
}

func (r *request) list(kind string, f ListFilter) (opResult, error) {
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	if err := r.readSection(kind); err != nil {
		return opResult{}, err
	}
	if r.c.Subject != "" && kind == kindDevices {
		// A viewer reads back a device it holds settings on; listing
		// devices stays an admin's (devices:read).
		return opResult{}, fmt.Errorf("viewer %s may not list devices: %w", r.c.Subject, ErrForbidden)
	}
	var ids []string
	switch kind {
	case kindOrgs:
		ids = keys(r.s.m.orgs)
	case kindSites:
		ids = keys(r.s.m.sites)
	case kindDevices:
		ids = keys(r.s.m.devices)
	case kindSubjects:
		ids = keys(r.s.m.subjects)
	case kindGroups:
		ids = keys(r.s.m.groups)
	case kindRoles:
		ids = keys(r.s.m.roles)
	case kindGrants:
		ids = keys(r.s.m.grants)
	case kindShares:
		ids = keys(r.s.m.shares)
	case kindRequests:
		ids = keys(r.s.m.requests)
	case kindAdmins:
		ids = keys(r.s.m.admins)
	}
	sort.Strings(ids)
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		obj, _ := r.s.m.get(kind, id)
		if r.canRead(kind, obj) && listFilter(obj, f) {
			out = append(out, view(obj))
		}
	}
	return opResult{Body: out}, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// putObject creates or replaces kind/id (id "": taken from obj or
// generated) with obj; guard, when not nil, may refuse it once the stored
// record is known (see Put).
func (r *request) putObject(kind, id string, obj any, guard func(old any) error) (opResult, error) {
	bodyID := objID(obj)
	post := id == ""
	switch {
	case post && *bodyID == "":
		id = newID(idPrefix(kind))
	case post:
		if !validID(*bodyID) {
			return opResult{}, fieldErr("id", fmt.Sprintf("%q is not a valid id", *bodyID))
		}
		id = *bodyID
	case *bodyID != "" && *bodyID != id:
		return opResult{}, fieldErr("id", "differs from the id in the path")
	}
	*bodyID = id
	r.s.writeMu.Lock()
	defer r.s.writeMu.Unlock()
	old, exists := r.s.m.get(kind, id)
	if post && exists {
		return opResult{}, fmt.Errorf("%s %q already exists: %w", kind, id, ErrConflict)
	}
	if !exists {
		old = nil
	}
	r.defaultOwner(obj)
	if err := r.authorizeWrite(kind, old, obj); err != nil {
		return opResult{}, err
	}
	if guard != nil {
		if err := guard(old); err != nil {
			return opResult{}, err
		}
	}
	changes, result, err := r.prepare(kind, old, obj)
	if err != nil {
		return opResult{}, err
	}
	if _, err := r.s.commit(r.ctx, changes); err != nil {
		return opResult{}, err
	}
	if result == nil {
		result = view(changes[0].obj)
	}
	return opResult{Created: !exists, Body: result}, nil
}

// defaultOwner fills the fields a viewer caller leaves implicit.
func (r *request) defaultOwner(obj any) {
	if r.c.Subject == "" {
		return
	}
	switch o := obj.(type) {
	case *Share:
		if o.Owner == "" {
			o.Owner = r.c.Subject
		}
	case *AccessRequest:
		if o.Requester == "" {
			o.Requester = r.c.Subject
		}
	}
}

// prepare validates obj (replacing old) and returns the changes to commit,
// the record itself first. result overrides the response body when non-nil.
func (r *request) prepare(kind string, old, obj any) (changes []change, result any, err error) {
	m := r.s.m
	creator := r.c.String()
	if old != nil {
		creator = createdBy(old)
	}
	switch o := obj.(type) {
	case *Org:
		o.CreatedBy = creator
		if p, ok := old.(*Org); ok {
			o.ProviderAllowedUntil = p.ProviderAllowedUntil
		}
		err = m.validateOrg(o)
	case *Site:
		o.CreatedBy = creator
		if p, ok := old.(*Site); ok {
			o.Armed = p.Armed
		}
		err = m.validateSite(o)
	case *Device:
		return r.prepareDevice(old, o, creator)
	case *Subject:
		o.CreatedBy = creator
		err = m.validateSubject(o)
		if p, ok := old.(*Subject); err == nil && ok && p.Kind == SubjectCompany && o.Kind != SubjectCompany && len(m.employees[o.ID]) > 0 {
			err = fmt.Errorf("subject %q has employees and must stay a company: %w", o.ID, ErrConflict)
		}
	case *Group:
		o.CreatedBy = creator
		err = m.validateGroup(o)
	case *Role:
		o.CreatedBy, o.Builtin = creator, false
		err = m.validateRole(o)
	case *Grant:
		o.CreatedBy, o.Source = creator, SourceManual
		if p, ok := old.(*Grant); ok {
			o.Source = p.Source
		}
		var c *grantC
		if c, err = compileGrant(o); err == nil {
			err = m.validateGrant(c)
		}
		return []change{{kindGrants, o.ID, c}}, nil, err
	case *Share:
		o.CreatedBy = creator
		return r.prepareShare(old, o)
	case *AccessRequest:
		o.CreatedBy = creator
		err = r.prepareRequest(old, o)
	case *Admin:
		o.CreatedBy = creator
		return r.prepareAdmin(old, o)
	}
	return []change{{kind, *objID(obj), obj}}, nil, err
}

// prepareDevice keeps state and the stored PTZ password, and gives a new
// camera's site members temporary access (rule 6).
func (r *request) prepareDevice(old any, d *Device, creator string) ([]change, any, error) {
	m := r.s.m
	d.CreatedBy = creator
	p, replaced := old.(*Device)
	if replaced {
		d.AlarmUntil = p.AlarmUntil
	}
	if err := restoreSecrets(p, d); err != nil {
		return nil, nil, err
	}
	if err := m.validateDevice(d); err != nil {
		return nil, nil, err
	}
	changes := []change{{kindDevices, d.ID, d}}
	if d.Kind != DeviceCamera {
		return changes, nil, nil
	}
	// Rule 6 (seed 000, "After a video device is added to a space"): a new
	// camera, or one moved into a site (or turned into a camera), gives the
	// member installers and companies of the sites it enters temporary
	// access; members of a site it was already in get nothing new.
	var was set
	if replaced {
		if p.Kind == DeviceCamera && p.Site == d.Site {
			return changes, nil, nil
		}
		if p.Kind == DeviceCamera {
			was = set{}
			var oldBuf [8]string
			for _, site := range m.siteChain(p.Site, oldBuf[:0]) {
				was[site] = struct{}{}
			}
		}
	}
	until := r.now.Add(r.s.TemporaryAccess).UTC()
	var buf [8]string
	for _, site := range m.siteChain(d.Site, buf[:0]) {
		if has(was, site) {
			continue
		}
		for sid := range m.siteMembers[site] {
			s := m.subjects[sid]
			if s == nil || (s.Kind != SubjectInstaller && s.Kind != SubjectCompany) {
				continue
			}
			// The grant is the rule's, made for the member: it belongs to
			// whoever made the member, so an individual-access admin adding
			// a camera to a site does not see (or learn the ids of) members
			// another admin made.
			g := &Grant{ID: newID("tmp-"), Subject: sid, Device: d.ID, Actions: actionsTemporary.Names(),
				Condition: "always", NotAfter: &until, Source: SourceAuto, CreatedBy: s.CreatedBy}
			c, err := compileGrant(g)
			if err != nil {
				return nil, nil, err
			}
			changes = append(changes, change{kindGrants, g.ID, c})
		}
	}
	return changes, nil, nil
}

func (r *request) prepareShare(old any, sh *Share) ([]change, any, error) {
	m := r.s.m
	c, err := compileShare(sh)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRef("device", sh.Device, m.devices[sh.Device] != nil, "device"); err != nil {
		return nil, nil, err
	}
	if err := checkRef("owner", sh.Owner, m.subjects[sh.Owner] != nil, "subject"); err != nil {
		return nil, nil, err
	}
	if r.c.Subject != "" || m.subjects[sh.Owner] != nil {
		if d := r.s.evaluateFresh(sh.Owner, sh.Device, ActionShare, r.now, -1); !d.Allowed {
			return nil, nil, fieldErr("owner", fmt.Sprintf("%s may not share %s: %s", sh.Owner, sh.Device, d.Reason))
		}
		if err := m.shareWithinOwner(c, r.now); err != nil {
			return nil, nil, err
		}
	}
	rec, ok := m.byEmail[sh.RecipientEmail]
	if sh.RecipientEmail == "" || !ok {
		return nil, nil, fieldErr("recipient_email", "no registered user has this email")
	}
	if rec == sh.Owner {
		return nil, nil, fieldErr("recipient_email", "is the owner's own email")
	}
	sh.Recipient, sh.State = rec, SharePending
	if p, ok := old.(*Share); ok && p.Recipient == rec && p.Device == sh.Device {
		sh.State = p.State // editing levels, schedule or active_until keeps the recipient's answer
	}
	return []change{{kindShares, sh.ID, c}}, nil, nil
}

func (r *request) prepareRequest(old any, ar *AccessRequest) error {
	m := r.s.m
	if p, ok := old.(*AccessRequest); ok && p.State != RequestPending {
		return fmt.Errorf("access request %q is already %s: %w", ar.ID, p.State, ErrConflict)
	}
	ar.State, ar.DecidedBy, ar.Grants = RequestPending, "", nil
	s := m.subjects[ar.Requester]
	if err := checkRef("requester", ar.Requester, s != nil, "subject"); err != nil {
		return err
	}
	if s.Kind != SubjectInstaller && s.Kind != SubjectCompany {
		return fieldErr("requester", "only PRO users (installers, companies) request temporary access")
	}
	if len(ar.Devices) == 0 {
		return fieldErr("devices", "at least one device is required")
	}
	for i, d := range ar.Devices {
		dev := m.devices[d]
		if dev == nil {
			return fieldErr(fmt.Sprintf("devices[%d]", i), fmt.Sprintf("no device %q", d))
		}
		if dev.Kind != DeviceCamera {
			return fieldErr(fmt.Sprintf("devices[%d]", i), "temporary access is for cameras")
		}
	}
	acts, err := ParseActions(ar.Actions)
	if err != nil {
		return fieldErr("actions", err.Error())
	}
	if acts == 0 || acts&^actionsVideo != 0 || acts&ActionManagePrivacy != 0 {
		return fieldErr("actions", "want camera actions (live, archive, download, sound, ptz, notices, settings, share)")
	}
	if ar.Duration == 0 {
		ar.Duration = Duration(r.s.TemporaryAccess)
	}
	if ar.Duration < 0 || time.Duration(ar.Duration) > 30*24*time.Hour {
		return fieldErr("duration", "must be positive and at most 720h")
	}
	return nil
}

func (r *request) prepareAdmin(old any, a *Admin) ([]change, any, error) {
	m := r.s.m
	a.Key = ""
	if a.IndividualAccess == "" {
		a.IndividualAccess = IndividualAuto
	}
	a.Sections, a.Individual = []string{}, false
	for i, role := range a.Roles {
		ro := m.roles[role]
		if ro == nil {
			return nil, nil, fieldErr(fmt.Sprintf("roles[%d]", i), fmt.Sprintf("no role %q", role))
		}
		// The snapshot (seed 001): later edits of the role do not reach this
		// admin until it is assigned again.
		for _, sec := range ro.Sections {
			if !sectionAllows(a.Sections, sec) {
				a.Sections = append(a.Sections, sec)
			}
		}
		a.Individual = a.Individual || ro.IndividualAccess
	}
	switch a.IndividualAccess {
	case IndividualOn:
		a.Individual = true
	case IndividualOff:
		a.Individual = false
	}
	if a.ReportsTo != "" {
		if m.admins[a.ReportsTo] == nil {
			return nil, nil, fieldErr("reports_to", fmt.Sprintf("no admin %q", a.ReportsTo))
		}
		for cur, i := a.ReportsTo, 0; cur != "" && i < 64; i++ {
			if cur == a.ID {
				return nil, nil, fieldErr("reports_to", "would make a cycle")
			}
			cur = m.admins[cur].ReportsTo
		}
	}
	if me, _ := r.admin(); me != nil {
		for i, role := range a.Roles {
			for _, sec := range m.roles[role].Sections {
				if !sectionAllows(me.Sections, sec) {
					return nil, nil, fmt.Errorf("admin %s cannot assign roles[%d] %q: it holds section %s, which the caller lacks: %w", me.ID, i, role, sec, ErrForbidden)
				}
			}
		}
		if err := withinReach(me, a, "the new or changed admin"); err != nil {
			return nil, nil, err
		}
	}
	var key string
	if p, ok := old.(*Admin); ok {
		a.KeyHash = p.KeyHash
	} else {
		key = newID("cgk_") + newID("")
		h := sha256.Sum256([]byte(key))
		a.KeyHash = hex.EncodeToString(h[:])
	}
	out := view(a).(*Admin)
	out.Key = key
	return []change{{kindAdmins, a.ID, a}}, out, nil
}
