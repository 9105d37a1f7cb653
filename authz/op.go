package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Caller is who asks for an operation: a bootstrap admin key (Root), an
// admin created through the API (Admin), or a viewer subject from a
// verified JWT (Subject).
type Caller struct {
	Root    bool
	Admin   string
	Subject string
}

func (c Caller) String() string {
	switch {
	case c.Root:
		return "root"
	case c.Admin != "":
		return "admin:" + c.Admin
	case c.Subject != "":
		return "subject:" + c.Subject
	}
	return "anonymous"
}

// opResult is what an operation answers: Created tells a create from a
// replace, Body is the record or answer.
type opResult struct {
	Created bool
	Body    any
}

// request is one operation being served, typed or from the JSON
// transport (authz/jsonapi). method and parts name the operation as its
// REST form does ("PUT", ["devices", "cam1"]): the audit trail records
// them, so both doors leave the same entries.
type request struct {
	s      *Service
	ctx    context.Context
	c      Caller
	method string
	parts  []string
	now    time.Time
}

// Record kinds, as the REST paths name them (DESIGN §6).
const (
	KindOrgs     = kindOrgs
	KindSites    = kindSites
	KindDevices  = kindDevices
	KindSubjects = kindSubjects
	KindGroups   = kindGroups
	KindRoles    = kindRoles
	KindGrants   = kindGrants
	KindShares   = kindShares
	KindRequests = kindRequests
	KindAdmins   = kindAdmins
)

// IsKind reports whether k names a record kind (KindOrgs …).
func IsKind(k string) bool {
	switch k {
	case kindOrgs, kindSites, kindDevices, kindSubjects, kindGroups, kindRoles,
		kindGrants, kindShares, kindRequests, kindAdmins:
		return true
	}
	return false
}

// maxCommitRetries bounds how often run re-runs a write that lost a
// revision race against another node.
const maxCommitRetries = 5

// run serves one operation: the caller must be someone, every id in parts
// must be valid, a write that lost a revision race is validated and
// committed again, and writes (and refused reads) are audited under method
// and parts, so the typed methods and the JSON API leave the same trail.
func (s *Service) run(ctx context.Context, c Caller, method string, parts []string, fn func(*request) (opResult, error)) (opResult, error) {
	if !c.Root && c.Admin == "" && c.Subject == "" {
		return opResult{}, ErrForbidden
	}
	for i, p := range parts[1:] {
		if !validID(p) {
			f := "id"
			if i > 0 {
				f = "path"
			}
			return opResult{}, fieldErr(f, fmt.Sprintf("%q is not a valid id", p))
		}
	}
	r := &request{s: s, ctx: ctx, c: c, method: method, parts: parts, now: s.Now()}
	res, err := fn(r)
	// Another node committed between our validation and our commit: the model
	// has caught up, so validate and commit again against it.
	for attempt := 0; attempt < maxCommitRetries && errors.Is(err, ErrRevisionConflict); attempt++ {
		r.now = s.Now()
		res, err = fn(r)
	}
	if method != "GET" {
		r.auditWrite(err)
	} else if errors.Is(err, ErrForbidden) {
		r.auditWrite(err)
	}
	return res, err
}

func (r *request) auditWrite(err error) {
	e := AuditEntry{Time: r.now, Who: r.c.String(), What: r.method + " " + strings.Join(r.parts, "/"), Allowed: err == nil}
	switch {
	case err == nil:
		e.Why = "ok"
	case errors.Is(err, ErrForbidden):
		e.Why = err.Error()
	default:
		return // bad input and conflicts change nothing and deny nothing
	}
	r.s.audit.add(e)
}

func newID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
