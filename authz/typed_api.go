package authz

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The typed write API: what the JSON API does, as Go methods. Each runs as
// the same request the HTTP path builds (the same authorization of each
// caller kind, validation, cascades, commit retry and audit entry), so a
// program using authz as a library and a client of /api/v1 are held to one
// set of rules. Read-only fields of a record (an org's
// provider_allowed_until, a site's armed, a grant's source, a share's state
// …) are ignored on write: the service keeps or sets them.
//
// Errors: *FieldError (bad input, naming the field), ErrForbidden,
// ErrNotFound, ErrConflict, or a store error.

// put creates (id "": the service picks one) or replaces one record;
// fresh returns a new copy of the caller's value for each attempt.
func put[T any](s *Service, ctx context.Context, c Caller, kind, id string, fresh func() *T) (*T, bool, error) {
	method, parts := "PUT", []string{kind, id}
	if id == "" {
		method, parts = "POST", []string{kind}
	}
	res, err := s.run(ctx, c, method, parts, func(r *request) (opResult, error) {
		return r.putObject(kind, id, fresh(), nil)
	})
	if err != nil {
		return nil, false, err
	}
	return res.Body.(*T), res.Created, nil
}

// PutOrg creates or replaces an organization; created tells which.
func (s *Service) PutOrg(ctx context.Context, c Caller, o Org) (_ *Org, created bool, _ error) {
	return put(s, ctx, c, kindOrgs, o.ID, func() *Org { v := o; return &v })
}

// PutSite creates or replaces a site.
func (s *Service) PutSite(ctx context.Context, c Caller, st Site) (_ *Site, created bool, _ error) {
	return put(s, ctx, c, kindSites, st.ID, func() *Site { v := st; return &v })
}

// PutDevice creates or replaces a device; the answer redacts its secrets
// as a GET does. A new camera gives its site's member installers and
// companies temporary access (rule 6).
func (s *Service) PutDevice(ctx context.Context, c Caller, d Device) (_ *Device, created bool, _ error) {
	return put(s, ctx, c, kindDevices, d.ID, func() *Device { v := copyDevice(&d); return &v })
}

// PutDevices creates or replaces many devices in one commit: all of them
// or none, each held to PutDevice's rules (a new camera's temporary access
// included). Each must name its id, once. It returns how many it created.
// It is for bootstrapping thousands of configured cameras, where one
// commit (and fsync) per camera would take seconds.
func (s *Service) PutDevices(ctx context.Context, c Caller, ds []Device) (created int, _ error) {
	res, err := s.run(ctx, c, "PUT", []string{kindDevices}, func(r *request) (opResult, error) {
		return r.putDevices(ds)
	})
	if err != nil {
		return 0, err
	}
	return res.Body.(int), nil
}

func (r *request) putDevices(ds []Device) (opResult, error) {
	r.s.writeMu.Lock()
	defer r.s.writeMu.Unlock()
	seen := set{}
	var changes []change
	created := 0
	for i := range ds {
		d := copyDevice(&ds[i])
		field := fmt.Sprintf("devices[%d]", i)
		if !validID(d.ID) {
			return opResult{}, fieldErr(field+".id", fmt.Sprintf("%q is not a valid id", d.ID))
		}
		if has(seen, d.ID) {
			return opResult{}, fieldErr(field+".id", fmt.Sprintf("device %q appears twice", d.ID))
		}
		seen[d.ID] = struct{}{}
		old, exists := r.s.m.get(kindDevices, d.ID)
		if !exists {
			old = nil
			created++
		}
		if err := r.authorizeWrite(kindDevices, old, &d); err != nil {
			return opResult{}, err
		}
		ch, _, err := r.prepare(kindDevices, old, &d)
		if err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				return opResult{}, fieldErr(field+"."+fe.Field, fe.Msg)
			}
			return opResult{}, err
		}
		changes = append(changes, ch...)
	}
	if len(changes) > 0 {
		if _, err := r.s.commit(r.ctx, changes); err != nil {
			return opResult{}, err
		}
	}
	return opResult{Body: created}, nil
}

// PutSubject creates or replaces a subject.
func (s *Service) PutSubject(ctx context.Context, c Caller, sub Subject) (_ *Subject, created bool, _ error) {
	return put(s, ctx, c, kindSubjects, sub.ID, func() *Subject { v := sub; return &v })
}

// PutGroup creates or replaces a group.
func (s *Service) PutGroup(ctx context.Context, c Caller, g Group) (_ *Group, created bool, _ error) {
	return put(s, ctx, c, kindGroups, g.ID, func() *Group { v := g; return &v })
}

// PutRole creates or replaces a custom role.
func (s *Service) PutRole(ctx context.Context, c Caller, ro Role) (_ *Role, created bool, _ error) {
	return put(s, ctx, c, kindRoles, ro.ID, func() *Role { v := ro; return &v })
}

// PutGrant creates or replaces a grant.
func (s *Service) PutGrant(ctx context.Context, c Caller, g Grant) (_ *Grant, created bool, _ error) {
	return put(s, ctx, c, kindGrants, g.ID, func() *Grant { v := g; return &v })
}

// PutShare creates or replaces a share (a viewer caller is its owner when
// Owner is empty).
func (s *Service) PutShare(ctx context.Context, c Caller, sh Share) (_ *Share, created bool, _ error) {
	return put(s, ctx, c, kindShares, sh.ID, func() *Share { v := sh; return &v })
}

// RequestAccess creates or replaces a pending access request (a viewer
// caller is its requester when Requester is empty).
func (s *Service) RequestAccess(ctx context.Context, c Caller, ar AccessRequest) (_ *AccessRequest, created bool, _ error) {
	return put(s, ctx, c, kindRequests, ar.ID, func() *AccessRequest { v := ar; return &v })
}

// PutAdmin creates or replaces an API admin; on create the answer carries
// its key, the only time it is shown.
func (s *Service) PutAdmin(ctx context.Context, c Caller, a Admin) (_ *Admin, created bool, _ error) {
	return put(s, ctx, c, kindAdmins, a.ID, func() *Admin { v := a; return &v })
}

// Delete removes kind/id with its cascades (DeleteOrg … say which
// conflicts each kind has).
func (s *Service) Delete(ctx context.Context, c Caller, kind, id string) error {
	if !IsKind(kind) {
		return fmt.Errorf("kind %q: %w", kind, ErrNotFound)
	}
	_, err := s.run(ctx, c, "DELETE", []string{kind, id}, func(r *request) (opResult, error) {
		return r.del(kind, id)
	})
	return err
}

// DeleteOrg removes an organization (ErrConflict while a site uses it).
func (s *Service) DeleteOrg(ctx context.Context, c Caller, id string) error {
	return s.Delete(ctx, c, kindOrgs, id)
}

// DeleteSite removes a site and its grants (ErrConflict while it has
// sub-sites or devices).
func (s *Service) DeleteSite(ctx context.Context, c Caller, id string) error {
	return s.Delete(ctx, c, kindSites, id)
}

// DeleteDevice removes a device with its grants and shares.
func (s *Service) DeleteDevice(ctx context.Context, c Caller, id string) error {
	return s.Delete(ctx, c, kindDevices, id)
}

// DeleteSubject removes a subject with its grants and shares, and takes it
// out of groups and privacy-manager lists.
func (s *Service) DeleteSubject(ctx context.Context, c Caller, id string) error {
	return s.Delete(ctx, c, kindSubjects, id)
}

// DeleteGroup removes a group with its grants.
func (s *Service) DeleteGroup(ctx context.Context, c Caller, id string) error {
	return s.Delete(ctx, c, kindGroups, id)
}

// DeleteRole removes a custom role (ErrConflict while grants use it).
func (s *Service) DeleteRole(ctx context.Context, c Caller, id string) error {
	return s.Delete(ctx, c, kindRoles, id)
}

// DeleteGrant removes a grant.
func (s *Service) DeleteGrant(ctx context.Context, c Caller, id string) error {
	return s.Delete(ctx, c, kindGrants, id)
}

// DeleteShare removes a share.
func (s *Service) DeleteShare(ctx context.Context, c Caller, id string) error {
	return s.Delete(ctx, c, kindShares, id)
}

// DeleteAccessRequest removes an access request.
func (s *Service) DeleteAccessRequest(ctx context.Context, c Caller, id string) error {
	return s.Delete(ctx, c, kindRequests, id)
}

// DeleteAdmin removes an API admin (ErrConflict while another reports to it).
func (s *Service) DeleteAdmin(ctx context.Context, c Caller, id string) error {
	return s.Delete(ctx, c, kindAdmins, id)
}

// act runs the action verb on kind/id as POST /kind/id/verb does.
func (s *Service) act(ctx context.Context, c Caller, method, kind, id, verb, device string) (any, error) {
	res, err := s.run(ctx, c, method, []string{kind, id, verb}, func(r *request) (opResult, error) {
		return r.action(kind, id, verb, device)
	})
	return res.Body, err
}

// Arm arms (armed) or disarms a site.
func (s *Service) Arm(ctx context.Context, c Caller, site string, armed bool) (*Site, error) {
	verb := "disarm"
	if armed {
		verb = "arm"
	}
	b, err := s.act(ctx, c, "POST", kindSites, site, verb, "")
	if err != nil {
		return nil, err
	}
	return b.(*Site), nil
}

// Alarm opens the device's alarm window (its site's alarm_window) and
// returns when it closes.
func (s *Service) Alarm(ctx context.Context, c Caller, device string) (until time.Time, _ error) {
	b, err := s.act(ctx, c, "POST", kindDevices, device, "alarm", "")
	if err != nil {
		return time.Time{}, err
	}
	return b.(map[string]any)["alarm_until"].(time.Time), nil
}

// AllowProvider lifts the integrator restriction of an organization until
// the next midnight in its restriction time zone (rule 9).
func (s *Service) AllowProvider(ctx context.Context, c Caller, org string) (*Org, error) {
	b, err := s.act(ctx, c, "POST", kindOrgs, org, "allow-provider", "")
	if err != nil {
		return nil, err
	}
	return b.(*Org), nil
}

// AnswerShare accepts or rejects a share, as its recipient (or an admin).
func (s *Service) AnswerShare(ctx context.Context, c Caller, share string, accept bool) (*Share, error) {
	verb := "reject"
	if accept {
		verb = "accept"
	}
	b, err := s.act(ctx, c, "POST", kindShares, share, verb, "")
	if err != nil {
		return nil, err
	}
	return b.(*Share), nil
}

// DecideRequest approves (one time-limited grant per device) or denies a
// pending access request, as a privacy manager of its devices' sites (or
// an admin).
func (s *Service) DecideRequest(ctx context.Context, c Caller, request string, approve bool) (*AccessRequest, error) {
	verb := "deny"
	if approve {
		verb = "approve"
	}
	b, err := s.act(ctx, c, "POST", kindRequests, request, verb, "")
	if err != nil {
		return nil, err
	}
	return b.(*AccessRequest), nil
}

// RevokeTemporary removes a subject's temporary access early: on device,
// or everywhere when device is "" ("remove access to all"). It returns the
// ids of the grants removed.
func (s *Service) RevokeTemporary(ctx context.Context, c Caller, subject, device string) (removed []string, _ error) {
	b, err := s.act(ctx, c, "DELETE", kindSubjects, subject, "temporary-access", device)
	if err != nil {
		return nil, err
	}
	return b.(map[string]any)["removed"].([]string), nil
}

// BulkResult is what a bulk access change did.
type BulkResult struct {
	Grants   []string   `json:"grants"`   // the bulk grants created, one per subject × device
	Pairs    int        `json:"pairs"`    // subjects × devices
	Narrowed []string   `json:"narrowed"` // the subjects' own site grants now excepting selected devices
	Kept     []BulkKept `json:"kept"`     // access bulk does not change: privacy managers, groups, companies
}

// BulkAccess sets, for every subject × device, exactly b.Actions from the
// subject's own grants (rule 7): one commit, all pairs or none.
func (s *Service) BulkAccess(ctx context.Context, c Caller, b BulkRequest) (BulkResult, error) {
	res, err := s.run(ctx, c, "POST", []string{"bulk-access"}, func(r *request) (opResult, error) {
		return r.bulkApply(b)
	})
	if err != nil {
		return BulkResult{}, err
	}
	return res.Body.(BulkResult), nil
}

// CheckQuery is a question to CheckAs.
type CheckQuery struct {
	Subject string // "" for a viewer caller: itself
	Device  string
	Action  Action
	At      time.Time  // zero: now
	Footage *time.Time // the footage time, for archive and download
}

// CheckAs answers a decision question on behalf of a caller, as GET /check
// does: a viewer asks only about itself (and learns nothing of devices it
// has no rights on), an admin needs check:read and, with individual
// access, asks only about what it sees. The gateway's own enforcement uses
// Check, which has no caller.
func (s *Service) CheckAs(ctx context.Context, c Caller, q CheckQuery) (Decision, error) {
	res, err := s.run(ctx, c, "GET", []string{"check"}, func(r *request) (opResult, error) {
		subject, err := r.checkCaller(q.Subject, q.Device)
		if err != nil {
			return opResult{}, err
		}
		if subject == "" {
			return opResult{}, fieldErr("subject", "is required")
		}
		if q.Device == "" {
			return opResult{}, fieldErr("device", "is required")
		}
		if _, err := ParseAction(q.Action.String()); err != nil {
			return opResult{}, fieldErr("action", err.Error())
		}
		at := q.At
		if at.IsZero() {
			at = r.now
		}
		return opResult{Body: r.checkAnswer(subject, q.Device, q.Action, at, q.Footage)}, nil
	})
	if err != nil {
		return Decision{}, err
	}
	return res.Body.(Decision), nil
}
