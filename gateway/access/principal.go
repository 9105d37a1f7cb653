// Package access is camgate's policy enforcement point: every edge (RTSP,
// HLS, WHEP, archive, the share-link page and the JSON API) asks it who a
// credential belongs to and what that principal may do, and nothing else
// decides it. It owns token verification (one cache for viewer and link
// tokens), the admission of RTSP stream credentials (a camgate username and
// password, Basic or Digest, resolved to the subject or link it stands for
// and then decided as that principal's token), the
// authentication-failure limiter that every edge shares, the
// per-subject, per-camera and per-link (max_viewers) session limits,
// admission and re-check of live sessions, the archive's per-footage
// decisions, the PTZ holder's priority and the share-link policy.
//
// Principals and decision outcomes are typed: no edge compares identity
// strings or reads a decision's reason text.
package access

import (
	"github.com/camgate/camgate/authz"
)

// Kind is what sort of principal a credential names.
type Kind uint8

// Principal kinds.
const (
	// KindNone is an unauthenticated caller.
	KindNone Kind = iota
	// KindRoot is a bootstrap admin key from the configuration.
	KindRoot
	// KindAdmin is an admin created through the API (roles, sections,
	// individual access).
	KindAdmin
	// KindSubject is a viewer token's subject.
	KindSubject
	// KindLink is a share link's token.
	KindLink
	// KindRelay is another node of the cluster pulling a camera this node
	// owns (relay.go).
	KindRelay
)

func (k Kind) String() string {
	switch k {
	case KindRoot:
		return "root"
	case KindAdmin:
		return "admin"
	case KindSubject:
		return "subject"
	case KindLink:
		return "link"
	case KindRelay:
		return "relay"
	}
	return "anonymous"
}

// Principal is who a verified credential names.
type Principal struct {
	Kind Kind
	// ID is the admin id, subject id or link id (empty for root).
	ID string
	// Device is the camera a link (or a relay token) opens.
	Device string
}

// String is the principal as audit entries name it: "root", "admin:<id>",
// "subject:<id>", "link:<id>".
func (p Principal) String() string {
	if p.Kind == KindRoot || p.Kind == KindNone {
		return p.Kind.String()
	}
	return p.Kind.String() + ":" + p.ID
}

// Caller is the principal as authz's API sees it (links have no API caller
// form: they are never API callers).
func (p Principal) Caller() authz.Caller {
	switch p.Kind {
	case KindRoot:
		return authz.Caller{Root: true}
	case KindAdmin:
		return authz.Caller{Admin: p.ID}
	case KindSubject:
		return authz.Caller{Subject: p.ID}
	}
	return authz.Caller{}
}

// FromCaller is the principal of an authenticated API caller.
func FromCaller(c authz.Caller) Principal {
	switch {
	case c.Root:
		return Principal{Kind: KindRoot}
	case c.Admin != "":
		return Principal{Kind: KindAdmin, ID: c.Admin}
	case c.Subject != "":
		return Principal{Kind: KindSubject, ID: c.Subject}
	}
	return Principal{}
}

// IsAdmin reports whether p is root or an API admin.
func (p Principal) IsAdmin() bool { return p.Kind == KindRoot || p.Kind == KindAdmin }
