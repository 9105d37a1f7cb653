package jsonapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/camgate/camgate/authz"
)

// action serves /{kind}/{id}/{verb}: POST for the actions, GET and DELETE
// for /subjects/{id}/temporary-access. An unknown verb is a 404 before the
// method is looked at.
func action(ctx context.Context, s *authz.Service, c authz.Caller, method, kind, id, verb string, q url.Values) (Result, error) {
	want := "POST"
	if kind == authz.KindSubjects && verb == "temporary-access" {
		if method == "GET" {
			grants, err := s.TemporaryGrants(ctx, c, id)
			return Result{Body: grants}, err
		}
		want = "DELETE"
	}
	do, known := actions[kind+"/"+verb]
	if !known {
		return Result{}, fmt.Errorf("%s/%s: %w", kind, verb, authz.ErrNotFound)
	}
	if method != want {
		return Result{}, authz.ErrMethodNotAllowed
	}
	body, err := do(ctx, s, c, id, q)
	return Result{Body: body}, err
}

type actionFunc func(ctx context.Context, s *authz.Service, c authz.Caller, id string, q url.Values) (any, error)

// actions maps kind/verb to the typed method and the answer's JSON.
var actions = map[string]actionFunc{
	"sites/arm": func(ctx context.Context, s *authz.Service, c authz.Caller, id string, _ url.Values) (any, error) {
		return s.Arm(ctx, c, id, true)
	},
	"sites/disarm": func(ctx context.Context, s *authz.Service, c authz.Caller, id string, _ url.Values) (any, error) {
		return s.Arm(ctx, c, id, false)
	},
	"devices/alarm": func(ctx context.Context, s *authz.Service, c authz.Caller, id string, _ url.Values) (any, error) {
		until, err := s.Alarm(ctx, c, id)
		if err != nil {
			return nil, err
		}
		return map[string]any{"device": id, "alarm_until": until}, nil
	},
	"orgs/allow-provider": func(ctx context.Context, s *authz.Service, c authz.Caller, id string, _ url.Values) (any, error) {
		return s.AllowProvider(ctx, c, id)
	},
	"shares/accept": func(ctx context.Context, s *authz.Service, c authz.Caller, id string, _ url.Values) (any, error) {
		return s.AnswerShare(ctx, c, id, true)
	},
	"shares/reject": func(ctx context.Context, s *authz.Service, c authz.Caller, id string, _ url.Values) (any, error) {
		return s.AnswerShare(ctx, c, id, false)
	},
	"access-requests/approve": func(ctx context.Context, s *authz.Service, c authz.Caller, id string, _ url.Values) (any, error) {
		return s.DecideRequest(ctx, c, id, true)
	},
	"access-requests/deny": func(ctx context.Context, s *authz.Service, c authz.Caller, id string, _ url.Values) (any, error) {
		return s.DecideRequest(ctx, c, id, false)
	},
	"subjects/temporary-access": func(ctx context.Context, s *authz.Service, c authz.Caller, id string, q url.Values) (any, error) {
		removed, err := s.RevokeTemporary(ctx, c, id, q.Get("device"))
		if err != nil {
			return nil, err
		}
		return map[string]any{"subject": id, "removed": removed}, nil
	},
}

// checkBody is the answer of GET /check.
type checkBody struct {
	Allowed    bool       `json:"allowed"`
	Reason     string     `json:"reason"`
	ValidUntil *time.Time `json:"valid_until"`
}

// check is GET /check?subject=&device=&action=[&at=][&footage=]. Who may
// ask, and a missing subject or device, are answered before a malformed
// parameter, as authz.CheckAs orders them.
func check(ctx context.Context, s *authz.Service, c authz.Caller, q url.Values) (Result, error) {
	cq := authz.CheckQuery{Subject: q.Get("subject"), Device: q.Get("device")}
	a, actionErr := authz.ParseAction(q.Get("action"))
	cq.Action = a // 0 when malformed: CheckAs refuses it in its turn
	at, hasAt, atErr := timeParam(q, "at")
	if hasAt {
		cq.At = at
	}
	footage, hasFootage, footageErr := timeParam(q, "footage")
	if hasFootage {
		cq.Footage = &footage
	}
	d, err := s.CheckAs(ctx, c, cq)
	var fe *authz.FieldError
	switch {
	case err != nil && actionErr != nil && errors.As(err, &fe) && fe.Field == "action":
		return Result{}, fieldErr("action", actionErr.Error())
	case err != nil:
		return Result{}, err
	case atErr != nil:
		return Result{}, atErr
	case footageErr != nil:
		return Result{}, footageErr
	}
	out := checkBody{Allowed: d.Allowed, Reason: d.Reason}
	if !d.ValidUntil.IsZero() {
		out.ValidUntil = &d.ValidUntil
	}
	return Result{Body: out}, nil
}

// audit is GET /audit?after=SEQ&limit=N&who=&allowed=true|false. A caller
// that may not read the audit is refused before a malformed parameter is
// reported, as authz.Audit orders them.
func audit(ctx context.Context, s *authz.Service, c authz.Caller, q url.Values) (Result, error) {
	aq, perr := auditQuery(q)
	if perr != nil {
		if _, err := s.Audit(ctx, c, authz.AuditQuery{Limit: 1}); err != nil {
			return Result{}, err
		}
		return Result{}, perr
	}
	page, err := s.Audit(ctx, c, aq)
	return Result{Body: page}, err
}

func auditQuery(q url.Values) (authz.AuditQuery, error) {
	var aq authz.AuditQuery
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return aq, fieldErr("after", "want a sequence number")
		}
		aq.After = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return aq, fieldErr("limit", "want 1..1000")
		}
		aq.Limit = n
	}
	switch v := q.Get("allowed"); v {
	case "":
	case "true", "false":
		b := v == "true"
		aq.Allowed = &b
	default:
		return aq, fieldErr("allowed", "want true or false")
	}
	aq.Who = q.Get("who")
	return aq, nil
}

func timeParam(q url.Values, name string) (time.Time, bool, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, false, fieldErr(name, "want an RFC 3339 time")
	}
	return t, true, nil
}
