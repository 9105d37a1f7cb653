package session

import (
	"context"
	"errors"
	"time"
)

// Errors of admission, mapped to a status code by each protocol edge
// (RTSP/HTTP 401, 403, 404, 503).
var (
	// ErrUnauthenticated: no token, or a token that does not verify.
	ErrUnauthenticated = errors.New("missing or invalid token")
	// ErrForbidden: the token is valid but does not allow live viewing.
	ErrForbidden = errors.New("not allowed")
	// ErrUnknownCamera: no such camera.
	ErrUnknownCamera = errors.New("unknown camera")
	// ErrUnavailable: the decision could not be made (store unreachable).
	ErrUnavailable = errors.New("authorization unavailable")
)

// Ticket is an admission: who may watch which camera, in which variant,
// until when (by time alone).
type Ticket struct {
	Subject string
	Link    string
	// Credential is the stream credential that authenticated the viewer
	// (its username), empty for a token.
	Credential string
	// Relay is the node pulling the camera for its own viewers (no
	// subject, no link): admitted without a permission decision, from
	// that node's address only, and re-checked at ValidUntil against the
	// cluster membership (gateway/access relay.go).
	Relay  string
	Camera string
	// Variant is stream.VariantFull with `sound`, stream.VariantVideo without.
	Variant    string
	ValidUntil time.Time
	Reason     string
	// Token is a short fingerprint of the token, for logs.
	Token string
}

// Admitter decides whether a token may watch a camera live now. It is
// implemented by the gateway over authz (viewer tokens) and links (link
// tokens); every protocol server admits through it.
type Admitter interface {
	// Admit verifies the token and decides `live` (and `sound`, which picks
	// the variant) on camera now.
	Admit(ctx context.Context, token, camera string) (Ticket, error)
	// Recheck decides again for an admitted ticket from the cached decision
	// (an L1 hit: no I/O, no allocation). It returns nil while the ticket
	// still allows its variant, else an error wrapping ErrForbidden (or
	// ErrUnauthenticated when the token expired). It may move t.ValidUntil.
	Recheck(t *Ticket, now time.Time) error
}
