// Package links is camgate's share links (DESIGN §5, §4 rule 11): a registry
// of links persisted behind a small Store, JWTs minted by camgate with
// Ed25519 keys that rotate with overlap, verification with an in-process
// cache, the per-use decision (enabled, not deleted, inside its window and
// footage window, creator still holding `share`), the concurrent viewer cap,
// the /api/v1/links API, the JWK Set and the viewer page at /s/{token}.
//
// links imports nothing of the gateway: every permission question goes to
// the Policy the gateway gives it (gateway/access implements it).
package links

import (
	"errors"
	"slices"
	"time"

	"github.com/camgate/camgate/authz"
)

// Policy is what links needs from the permission model. Creator ids are
// stored ones ("root", "admin:<id>", a subject id): see CreatorID.
type Policy interface {
	// MayManage tells whether an admin caller may read (write=false) or
	// create and change (write=true) links at all. Viewer callers are never
	// asked: they manage only the links they created.
	MayManage(c Creator, write bool) bool
	// Sees tells whether an admin caller's reach (individual access)
	// includes the links that creator made on device.
	Sees(c Creator, creator, device string) bool
	// CreatorMay tells whether creator may now give action on device
	// through a link ("share" for the link as a whole). It is asked on
	// create and on every Decide, so no link outlives its creator's rights
	// or gives more than its creator has.
	CreatorMay(creator, device, action string, now time.Time) bool
	// Device returns a device's display name and whether it exists.
	Device(id string) (name string, ok bool)
}

// Creator is who calls the links API: root, an admin, or a viewer subject.
// It is authz.Caller so that HandleAPI plugs into the HTTP front unchanged.
type Creator = authz.Caller

// Link is one share link as stored.
type Link struct {
	ID          string     `json:"id"`
	Device      string     `json:"device"`
	Actions     []string   `json:"actions"`
	NotBefore   time.Time  `json:"not_before"`
	NotAfter    time.Time  `json:"not_after"`
	FootageFrom *time.Time `json:"footage_from,omitempty"`
	FootageTo   *time.Time `json:"footage_to,omitempty"`
	MaxViewers  int        `json:"max_viewers,omitempty"`
	// Creator is the subject id of a viewer, or "admin:<id>" / "root".
	Creator   string    `json:"creator"`
	CreatedAt time.Time `json:"created_at"`
	Enabled   bool      `json:"enabled"`
	// Deleted links are kept (a tombstone) until their not_after has
	// passed, so that a deleted link is refused as deleted, not as unknown,
	// on every node.
	Deleted bool `json:"deleted,omitempty"`
}

// Clone returns a deep copy (the store and the caches never share slices or
// pointers with callers).
func (l Link) Clone() Link {
	l.Actions = slices.Clone(l.Actions)
	if l.FootageFrom != nil {
		t := *l.FootageFrom
		l.FootageFrom = &t
	}
	if l.FootageTo != nil {
		t := *l.FootageTo
		l.FootageTo = &t
	}
	return l
}

// hasAction reports whether the link carries action a.
func (l *Link) hasAction(a string) bool {
	return slices.Contains(l.Actions, a)
}

// SigningKey is one Ed25519 key camgate signs link tokens with. The newest
// key (by CreatedAt, then KID) is the current one; older keys only verify.
type SigningKey struct {
	KID string `json:"kid"`
	// PrivateKey is the 64-byte ed25519.PrivateKey.
	PrivateKey []byte    `json:"private_key"`
	CreatedAt  time.Time `json:"created_at"`
	// RetireAfter is the latest not_after of any link signed with the key:
	// once it has passed (and the key is not current) no token it signed can
	// verify any more, and the key is dropped.
	RetireAfter time.Time `json:"retire_after"`
}

// Clone returns a deep copy.
func (k SigningKey) Clone() SigningKey {
	k.PrivateKey = slices.Clone(k.PrivateKey)
	return k
}

// Claims are what a verified link token says.
type Claims struct {
	LinkID    string
	Device    string
	NotBefore time.Time
	NotAfter  time.Time
}

// Decision is the answer of Decide: whether the link allows the action now,
// why (a short reason for logs and the page), and until when the answer
// holds by time alone (zero: no time bound known).
type Decision struct {
	Allowed    bool
	Reason     string
	ValidUntil time.Time
}

// Errors. The HTTP edges map them to status codes in one place each
// (statusOf for the API, pageFor for the viewer page).
var (
	// ErrInvalid: the token is malformed, its signature or claims are wrong (401/404).
	ErrInvalid = errors.New("invalid link token")
	// ErrExpired: the token's not_after has passed (410 on the page).
	ErrExpired = errors.New("link expired")
	// ErrNotYetValid: the token's not_before is in the future (403 on the page).
	ErrNotYetValid = errors.New("link not active yet")
	// ErrUnknownKey: the token's kid names no signing key (a forged token,
	// or a key dropped after all its links expired).
	ErrUnknownKey = errors.New("link token signed with an unknown key")
	// ErrNotFound: no such link (or not visible to the caller) (404).
	ErrNotFound = errors.New("no such link")
	// ErrForbidden: the caller may not do this (403).
	ErrForbidden = errors.New("forbidden")
	// ErrExists: a link or key with this id already exists (store level).
	ErrExists = errors.New("already exists")
	// ErrTooManyViewers: the link's max_viewers sessions are open (429).
	ErrTooManyViewers = errors.New("too many viewers on this link")
	// ErrStoreUnavailable: the shared link store (Redis) cannot be reached
	// or refuses writes, e.g. during a failover (503; the edge answers a
	// fixed message, the wrapped cause is for the logs).
	ErrStoreUnavailable = errors.New("links: store unavailable")
	// ErrClosed: the service was closed.
	ErrClosed = errors.New("links: service closed")
)

// FieldError is a 400: bad input, naming the JSON field and why.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, msg string) error { return &FieldError{Field: field, Msg: msg} }

// Reasons of a Decision (constant strings: Decide does not allocate).
const (
	ReasonAllowed      = "link allows it"
	ReasonUnknown      = "link does not exist"
	ReasonDeleted      = "link deleted"
	ReasonDisabled     = "link disabled"
	ReasonNotYetActive = "link not active yet"
	ReasonExpired      = "link expired"
	ReasonOtherDevice  = "link is for another device"
	ReasonAction       = "link does not include this action"
	ReasonFootage      = "footage outside the link's footage window"
	ReasonCreatorLost  = "link creator no longer may share this device"
	ReasonUnavailable  = "link registry unavailable"
)
