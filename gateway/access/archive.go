package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/links"
)

// Archive adapts the service to archive.RequestAuthorizer: a request
// verifies its token once (Begin, with the failure limiter of every edge);
// each footage time it serves is then decided against the current
// permissions (Grant.Allow).
type Archive struct{ S *Service }

// Authorize implements archive.Authorizer: one footage time of a request.
func (a Archive) Authorize(ctx context.Context, raw, device, action string, footage time.Time) (archive.Viewer, error) {
	gr, err := a.Begin(ctx, raw, device, action)
	if err != nil {
		return archive.Viewer{}, err
	}
	return gr.Allow(footage)
}

// Begin implements archive.RequestAuthorizer: it verifies the token and
// refuses what no footage time changes (unknown camera, a link for another
// camera, an unknown action). The request's instant is taken here: its
// footage times are all decided at it.
func (a Archive) Begin(ctx context.Context, raw, device, action string) (archive.Grant, error) {
	s := a.S
	p, err := s.Authenticate(ctx, raw)
	if err != nil {
		return nil, archiveErr(err)
	}
	act, err := authz.ParseAction(action)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", archive.ErrForbidden, err)
	}
	switch p.Kind {
	case KindLink:
		if p.Device != device {
			return nil, fmt.Errorf("%w: the link is for another camera", archive.ErrForbidden)
		}
		return &archiveLinkGrant{links: s.Links, link: p.ID, device: device, action: action, now: s.Now()}, nil
	case KindSubject:
		if _, ok := s.Authz.Device(device); !ok {
			return nil, fmt.Errorf("%w: %s", archive.ErrUnknownCamera, device)
		}
		return &archiveViewerGrant{authz: s.Authz, subject: p.ID, device: device, act: act, now: s.Now()}, nil
	}
	return nil, fmt.Errorf("%w: not a viewer credential", archive.ErrUnauthenticated)
}

// archiveErr turns an authentication error into the archive's kinds;
// a rate limit stays what it is (429 on every edge).
func archiveErr(err error) error {
	if errors.Is(err, session.ErrRateLimited) {
		return err
	}
	return fmt.Errorf("%w: %w", archive.ErrUnauthenticated, err)
}

// archiveViewerGrant decides footage times for a verified viewer token: the
// subject needs the action on the device for footage recorded at that time
// (grant windows, schedules, conditions and footage_within, from the cached
// decision, so a revocation during the request refuses what follows it).
type archiveViewerGrant struct {
	authz           *authz.Service
	subject, device string
	act             authz.Action
	now             time.Time
}

// Allow implements archive.Grant.
func (r *archiveViewerGrant) Allow(footage time.Time) (archive.Viewer, error) {
	d := r.authz.CheckFootage(r.subject, r.device, r.act, r.now, footage)
	if !d.Allowed {
		r.authz.RecordAudit(authz.AuditEntry{Who: "subject:" + r.subject, What: r.act.String() + " " + r.device + " at " + footage.UTC().Format(time.RFC3339), Why: d.Reason})
		if d.Reason == authz.ReasonStoreUnavailable {
			return archive.Viewer{}, fmt.Errorf("%w: %s", session.ErrUnavailable, d.Reason)
		}
		return archive.Viewer{}, fmt.Errorf("%w: %s", archive.ErrForbidden, d.Reason)
	}
	sound := r.authz.Check(r.subject, r.device, authz.ActionSound, r.now).Allowed
	return archive.Viewer{Subject: r.subject, Sound: sound}, nil
}

// SeesNodes implements archive.NodesGrant: a viewer with `settings` on
// the camera (who configures it) may learn which node holds its footage;
// other viewers, and share links, may not.
func (r *archiveViewerGrant) SeesNodes() bool {
	return r.authz.Check(r.subject, r.device, authz.ActionSettings, r.now).Allowed
}

// archiveLinkGrant decides footage times for a verified share link: the
// link's state, actions, window and footage window, and its creator's
// rights, from the link registry at each call.
type archiveLinkGrant struct {
	links                *links.Service
	link, device, action string
	now                  time.Time
}

// Allow implements archive.Grant.
func (r *archiveLinkGrant) Allow(footage time.Time) (archive.Viewer, error) {
	if d := r.links.Decide(r.link, r.device, r.action, r.now, &footage); !d.Allowed {
		if d.Reason == links.ReasonUnavailable {
			return archive.Viewer{}, fmt.Errorf("%w: %s", session.ErrUnavailable, d.Reason)
		}
		return archive.Viewer{}, fmt.Errorf("%w: %s", archive.ErrForbidden, d.Reason)
	}
	sound := r.links.Decide(r.link, r.device, "sound", r.now, nil).Allowed
	return archive.Viewer{Link: r.link, Sound: sound}, nil
}
