package access

import (
	"errors"

	"github.com/camgate/camgate/gateway/session"
)

// Errors of enforcement, mapped to statuses by each edge's one mapping.
var (
	// ErrForbidden: authenticated, not allowed (403). The same sentinel as
	// the session admission's.
	ErrForbidden = session.ErrForbidden
	// ErrUnavailable: the decision could not be made (503).
	ErrUnavailable = session.ErrUnavailable
	// ErrNotVisible: the object is outside the caller's individual access;
	// it is answered as if it did not exist (404), as authz does.
	ErrNotVisible = errors.New("not found")
)
