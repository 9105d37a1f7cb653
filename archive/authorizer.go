package archive

import (
	"context"
	"errors"
	"time"
)

// Actions the archive asks the Authorizer about.
const (
	ActionArchive       = "archive"
	ActionDownload      = "download"
	ActionPhotoView     = "photo_view"
	ActionAudioPlayback = "audio_playback"
	ActionAudioDownload = "audio_download"
)

// Errors an Authorizer returns; the handlers map them to HTTP statuses
// (401, 403, 404). Any other error is answered 503.
var (
	ErrUnauthenticated = errors.New("missing or invalid token")
	ErrForbidden       = errors.New("not allowed")
	ErrUnknownCamera   = errors.New("unknown camera")
)

// Errors of the archive itself.
var (
	// ErrBadRequest wraps every input error (answered 400).
	ErrBadRequest = errors.New("bad request")
	// ErrNotFound is returned for footage or objects that do not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrTooLarge is returned for an upload over MaxObjectSize (413).
	ErrTooLarge = errors.New("too large")
	// ErrUnsupported is returned for a recording the protocol asked for
	// cannot carry, M-JPEG over HLS (415).
	ErrUnsupported = errors.New("unsupported media type")
	// ErrClosed is returned by a Writer used after Close or after its Store closed.
	ErrClosed = errors.New("archive closed")
)

// Viewer is who an Authorizer admitted.
type Viewer struct {
	// Subject is the token's subject (or the link's creator); Link is the
	// link id for link tokens.
	Subject, Link string
	// Sound decides whether audio tracks are served (remuxed, not re-encoded).
	Sound bool
}

// Authorizer decides each archive request. footage is the recording time of
// what is about to be served (a segment's start, a range edge, an object's
// capture time): grant footage windows and link footage windows are enforced
// by the Authorizer through it.
type Authorizer interface {
	Authorize(ctx context.Context, token, camera, action string, footage time.Time) (Viewer, error)
}

// RequestAuthorizer is an Authorizer that verifies a request's token once.
// A request that serves many footage times (a download checks its range's
// edges and every segment, a playlist every segment) calls Begin once and
// asks the Grant about each time. Begin refuses what does not depend on
// the footage (ErrUnauthenticated, ErrUnknownCamera, ErrForbidden); the
// Grant still applies every permission rule to each footage time, so a
// segment outside what the viewer may see is refused as with Authorize.
// The Store uses it when its Authorizer implements it.
type RequestAuthorizer interface {
	Authorizer
	Begin(ctx context.Context, token, camera, action string) (Grant, error)
}

// Grant decides the footage times of one request whose token was verified
// by RequestAuthorizer.Begin. One goroutine uses it, for one request only.
type Grant interface {
	Allow(footage time.Time) (Viewer, error)
}

// NodesGrant is a Grant that may let its viewer learn which cluster node
// holds footage (the node of a Recordings span). A Grant that does not
// implement it never does: viewers get per-answer holder labels only.
type NodesGrant interface {
	Grant
	SeesNodes() bool
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, token, camera, action string, footage time.Time) (Viewer, error)

// Authorize implements Authorizer.
func (f AuthorizerFunc) Authorize(ctx context.Context, token, camera, action string, footage time.Time) (Viewer, error) {
	return f(ctx, token, camera, action, footage)
}
