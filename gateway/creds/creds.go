// Package creds holds camgate's stream credentials: short, random
// username/password pairs bound to a subject or to a share link, for RTSP
// clients and NVRs that cannot carry a JWT. ffmpeg keeps at most 127 bytes of
// the "user:password" of an RTSP URL, so a token as the password is cut and
// refused; NVR camera dialogs (Synology, Blue Iris, Milestone) have short
// password fields and often speak only Digest. A credential is
// "cgxxxxxxxx" / a 20-character password: it fits every such field, needs no
// URL escaping, and resolves at the RTSP edge to its subject (or link)
// principal, which is then decided exactly as a token of that principal.
//
// What is stored. The password is shown once, on create, and never stored:
//
//   - For Basic, a salted SHA-256 of the password. A slow hash (bcrypt,
//     argon2) protects guessable human passwords; these are machine-made with
//     115 bits of entropy, so a fast hash is as unforgeable and keeps the
//     DESCRIBE path in the microseconds.
//   - For Digest, HA1 = MD5(username:realm:password). RTSP Digest makes the
//     server compute MD5(HA1:nonce:MD5(method:uri)), so the server must hold
//     HA1, and HA1 is password-equivalent for Digest in that realm (anyone
//     holding it can answer any challenge; it does not give the password, so
//     Basic stays safe). camgate therefore never stores HA1 in the clear: it
//     is sealed with AES-256-GCM under a node key kept outside the store
//     (DATA/stream-credentials.key, 0600, created on first start), with the
//     credential id and realm as associated data. A copy of the store (a bolt
//     backup, a Redis dump or replica) alone gives neither the passwords nor
//     a usable HA1. Nodes that share a Redis store need the same key file;
//     a node with another key still verifies Basic and refuses Digest for
//     credentials it cannot open (logged once per credential).
//
// Verification is in process: credentials are cached (opened HA1 included)
// after their first use, so a repeat DESCRIBE costs a map lookup and a hash,
// no store round trip; a revoke drops the cached copy here and, through the
// gateway's change channel, on every node, and ends the credential's open
// sessions at once. Cached copies are also re-read after CacheTTL, which
// bounds a lost change message. Last-used times are written back at most once
// per TouchInterval per credential, off the request path.
package creds

import (
	"context"
	"errors"
	"time"
)

// Credential is one stream credential as stored. ID is also its username.
type Credential struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject,omitempty"`
	Link      string    `json:"link,omitempty"`
	Label     string    `json:"label,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// CreatedBy is the API caller that created it ("root", "admin:<id>" or
	// a subject id).
	CreatedBy string    `json:"created_by"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	LastUsed  time.Time `json:"last_used,omitzero"`

	// Salt and BasicHash verify a Basic password: SHA-256(salt || password).
	Salt      []byte `json:"salt"`
	BasicHash []byte `json:"basic_hash"`
	// Realm is the Digest realm HA1 was made for; SealedHA1 is HA1 sealed
	// with the node key named by KeyID (AES-256-GCM, nonce prepended).
	Realm     string `json:"realm"`
	SealedHA1 []byte `json:"sealed_ha1"`
	KeyID     string `json:"key_id"`
}

// Errors.
var (
	// ErrNotFound: no credential with that id.
	ErrNotFound = errors.New("stream credential not found")
	// ErrExists: a credential with that id exists (create races).
	ErrExists = errors.New("stream credential exists")
	// ErrBadCredentials: unknown username, wrong password or response,
	// expired credential. Callers answer 401 and learn nothing more.
	ErrBadCredentials = errors.New("bad stream credentials")
)

// Store persists credentials. Every backend (the embedded bbolt file, Redis)
// has the same semantics, checked by the conformance suite in
// gateway/creds/credstest:
//   - Update is an atomic read-modify-write: fn sees the current record (nil
//     when absent) and returns what to store (nil deletes it); an error from
//     fn aborts, changes nothing and is returned unwrapped. fn may run more
//     than once (optimistic retries) and must not have side effects. The
//     change is durable before Update returns.
//   - Get of an absent id returns ErrNotFound; Get and List return copies.
type Store interface {
	Get(ctx context.Context, id string) (Credential, error)
	List(ctx context.Context) ([]Credential, error)
	Update(ctx context.Context, id string, fn func(cur *Credential) (*Credential, error)) error
	Close() error
}
