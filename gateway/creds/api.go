package creds

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/internal/httpjson"
	"github.com/camgate/camgate/internal/strictjson"
	"github.com/camgate/camgate/links"
)

// Policy answers who may manage which credentials; the gateway implements
// it over authz and links (gateway/access.CredentialPolicy). Each method
// returns nil when allowed, else an error for the HTTP front's one mapping
// (forbidden, not found, or a field error).
type Policy interface {
	// Subject: may caller create or revoke (write) or list (read) the
	// credentials of subject? create is true on create, where the subject
	// must exist.
	Subject(c authz.Caller, subject string, write, create bool) error
	// Link: the same for the credentials of a share link.
	Link(c authz.Caller, link string, write bool) error
	// Audit records a change made through the API.
	Audit(c authz.Caller, what, why string)
}

// MaxLabel bounds a credential's label (characters).
const MaxLabel = 64

// HandleAPI serves /api/v1/stream-credentials[/{id}] for an authenticated
// caller; parts are the path segments after /api/v1 (with or without the
// leading "stream-credentials"):
//
//	POST   /stream-credentials            {"subject"|"link", "label", "not_after"} → 201 with the password, once
//	GET    /stream-credentials[?subject=|?link=]   those the caller may see, oldest first; no secret
//	GET    /stream-credentials/{id}       one
//	DELETE /stream-credentials/{id}       revoke → 200 {"id","revoked":true}; its sessions end at once
//
// A viewer token manages its own subject's credentials; an admin those of
// the subjects its subjects:read/write sections and reach include, and
// those of the links it may manage (links:read/write).
func (s *Service) HandleAPI(ctx *fasthttp.RequestCtx, p Policy, c authz.Caller, parts []string) error {
	if len(parts) > 0 && parts[0] == "stream-credentials" {
		parts = parts[1:]
	}
	method := string(ctx.Method())
	switch {
	case len(parts) == 0 && method == fasthttp.MethodPost:
		req, err := s.parseCreate(ctx.PostBody())
		if err != nil {
			return err
		}
		if req.Subject != "" {
			err = p.Subject(c, req.Subject, true, true)
		} else {
			err = p.Link(c, req.Link, true)
		}
		if err != nil {
			return err
		}
		created, err := s.create(ctx, req, links.CreatorID(c))
		if err != nil {
			return err
		}
		p.Audit(c, "POST stream-credentials "+created.ID, "for "+owner(created.Subject, created.Link))
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
		httpjson.WriteJSON(ctx, fasthttp.StatusCreated, created)
	case len(parts) == 0 && method == fasthttp.MethodGet:
		subject := string(ctx.QueryArgs().Peek("subject"))
		link := string(ctx.QueryArgs().Peek("link"))
		switch {
		case subject != "" && link != "":
			return &strictjson.Error{Field: "link", Msg: "filter by subject or by link, not both"}
		case subject != "":
			if err := p.Subject(c, subject, false, false); err != nil {
				return err
			}
		case link != "":
			if err := p.Link(c, link, false); err != nil {
				return err
			}
		case c.Subject != "":
			subject = c.Subject // a viewer lists its own
		}
		list, err := s.list(ctx, func(cr *Credential) bool {
			if subject != "" && cr.Subject != subject || link != "" && cr.Link != link {
				return false
			}
			return s.allowed(p, c, cr, false) == nil
		})
		if err != nil {
			return err
		}
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"stream_credentials": list})
	case len(parts) == 1 && (method == fasthttp.MethodGet || method == fasthttp.MethodDelete):
		write := method == fasthttp.MethodDelete
		cr, err := s.get(ctx, parts[0])
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: stream credential %s", httpjson.ErrNotFound, parts[0])
		}
		if err != nil {
			return err
		}
		if err := s.allowed(p, c, &cr, write); err != nil {
			return err
		}
		if !write {
			httpjson.WriteJSON(ctx, fasthttp.StatusOK, viewOf(&cr))
			return nil
		}
		if err := s.Revoke(ctx, cr.ID); errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: stream credential %s", httpjson.ErrNotFound, cr.ID)
		} else if err != nil {
			return err
		}
		p.Audit(c, "DELETE stream-credentials "+cr.ID, "revoked; it was for "+owner(cr.Subject, cr.Link))
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"id": cr.ID, "revoked": true})
	case len(parts) <= 1:
		return fmt.Errorf("%w: use POST/GET /api/v1/stream-credentials or GET/DELETE /api/v1/stream-credentials/{id}", httpjson.ErrMethodNotAllowed)
	default:
		return fmt.Errorf("%w: no such endpoint", httpjson.ErrNotFound)
	}
	return nil
}

func owner(subject, link string) string {
	if link != "" {
		return "link:" + link
	}
	return "subject:" + subject
}

// allowed asks the policy about an existing credential's owner.
func (s *Service) allowed(p Policy, c authz.Caller, cr *Credential, write bool) error {
	if cr.Link != "" {
		return p.Link(c, cr.Link, write)
	}
	return p.Subject(c, cr.Subject, write, false)
}

// parseCreate decodes and validates a create body (strict JSON: unknown
// fields, duplicate keys and wrong types are errors naming the field).
func (s *Service) parseCreate(body []byte) (CreateRequest, error) {
	var req CreateRequest
	if err := strictjson.Decode(body, &req, strictjson.Options{ValueHint: "invalid value (times are RFC 3339, e.g. 2026-05-01T08:00:00Z)"}); err != nil {
		return CreateRequest{}, err
	}
	return req, s.validate(&req)
}

// validate checks a create body, naming the field.
func (s *Service) validate(req *CreateRequest) error {
	switch {
	case req.Subject == "" && req.Link == "":
		return &strictjson.Error{Field: "subject", Msg: "required: the subject (or link) the credential stands for"}
	case req.Subject != "" && req.Link != "":
		return &strictjson.Error{Field: "link", Msg: "give subject or link, not both"}
	}
	if len([]rune(req.Label)) > MaxLabel {
		return &strictjson.Error{Field: "label", Msg: fmt.Sprintf("at most %d characters", MaxLabel)}
	}
	if strings.IndexFunc(req.Label, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return &strictjson.Error{Field: "label", Msg: "printable characters only"}
	}
	if req.NotAfter != nil && !req.NotAfter.After(s.Now()) {
		return &strictjson.Error{Field: "not_after", Msg: "must be in the future, e.g. " + s.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)}
	}
	return nil
}
