package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/recorder"
	"github.com/camgate/camgate/links"
)

// startArchive opens the archive store and the recorder, and starts
// recording every device with `record: true`.
func (g *Gateway) startArchive() error {
	g.archive = &archive.Store{
		Dir:             filepath.Join(g.Config.DataDir, "archive"),
		Retention:       time.Duration(g.Config.Archive.Retention),
		MaxDownload:     time.Duration(g.Config.Archive.MaxDownload),
		SegmentDuration: time.Duration(g.Config.Archive.SegmentDuration),
		MaxBytes:        g.Config.Archive.MaxBytes,
		Authorizer:      archiveAuthorizer{g},
		Logger:          g.Logger.With("component", "archive"),
	}
	if err := g.archive.Initialize(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	g.closers = append(g.closers, g.archive.Close)
	g.recorder = &recorder.Manager{Hub: g.hub, Archive: g.archive, Logger: g.Logger.With("component", "recorder")}
	if err := g.recorder.Initialize(); err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	g.closers = append(g.closers, g.recorder.Close)
	g.syncRecorders()
	return nil
}

// syncRecorders starts and stops recordings to match the devices' `record`.
func (g *Gateway) syncRecorders() {
	want := map[string]bool{}
	for _, d := range g.authz.Devices() {
		if d.Record && d.Kind == "camera" {
			want[d.ID] = true
		}
	}
	for _, cam := range g.recorder.Recording() {
		if !want[cam] {
			g.recorder.Stop(cam)
		}
		delete(want, cam)
	}
	for cam := range want {
		g.recorder.Start(cam)
	}
}

// archiveAuthorizer admits archive requests through the gateway's admission
// (the same token verification as live viewers: viewer JWT or share link).
// A request verifies its token once (Begin); each footage time it serves is
// then decided against the current permissions (Grant.Allow).
type archiveAuthorizer struct{ g *Gateway }

// Authorize implements archive.Authorizer: one footage time of a request.
func (a archiveAuthorizer) Authorize(ctx context.Context, raw, device, action string, footage time.Time) (archive.Viewer, error) {
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
func (a archiveAuthorizer) Begin(_ context.Context, raw, device, action string) (archive.Grant, error) {
	g := a.g
	if g.access.isLinkToken(raw) {
		return g.beginArchiveLink(raw, device, action)
	}
	claims, err := g.access.subjectOf(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", archive.ErrUnauthenticated, err)
	}
	if _, ok := g.authz.Device(device); !ok {
		return nil, fmt.Errorf("%w: %s", archive.ErrUnknownCamera, device)
	}
	act, err := authz.ParseAction(action)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", archive.ErrForbidden, err)
	}
	return &archiveViewerGrant{authz: g.authz, subject: claims.Subject, device: device, action: action, act: act, now: time.Now()}, nil
}

// beginArchiveLink verifies a share-link token for an archive request.
func (g *Gateway) beginArchiveLink(raw, device, action string) (archive.Grant, error) {
	claims, err := g.links.Verify(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", archive.ErrUnauthenticated, err)
	}
	if claims.Device != device {
		return nil, fmt.Errorf("%w: the link is for another camera", archive.ErrForbidden)
	}
	return &archiveLinkGrant{links: g.links, link: claims.LinkID, device: device, action: action, now: time.Now()}, nil
}

// archiveViewerGrant decides footage times for a verified viewer token: the
// subject needs the action on the device for footage recorded at that time
// (grant windows, schedules, conditions and footage_within, from the cached
// decision, so a revocation during the request refuses what follows it).
type archiveViewerGrant struct {
	authz           *authz.Service
	subject, device string
	action          string
	act             authz.Action
	now             time.Time
}

// Allow implements archive.Grant.
func (r *archiveViewerGrant) Allow(footage time.Time) (archive.Viewer, error) {
	d := r.authz.CheckFootage(r.subject, r.device, r.act, r.now, footage)
	if !d.Allowed {
		r.authz.RecordAudit(authz.AuditEntry{Who: "subject:" + r.subject, What: r.action + " " + r.device + " at " + footage.UTC().Format(time.RFC3339), Why: d.Reason})
		return archive.Viewer{}, fmt.Errorf("%w: %s", archive.ErrForbidden, d.Reason)
	}
	sound := r.authz.Check(r.subject, r.device, authz.ActionSound, r.now).Allowed
	return archive.Viewer{Subject: r.subject, Sound: sound}, nil
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
		return archive.Viewer{}, fmt.Errorf("%w: %s", archive.ErrForbidden, d.Reason)
	}
	sound := r.links.Decide(r.link, r.device, "sound", r.now, nil).Allowed
	return archive.Viewer{Link: r.link, Sound: sound}, nil
}

// handleArchive serves /archive/… (playback, segments, download, objects).
func (g *Gateway) handleArchive(ctx *fasthttp.RequestCtx, _ ...string) {
	if !g.archive.Handle(ctx) {
		httpapi.WriteError(ctx, fasthttp.StatusNotFound, "no such archive endpoint")
	}
}

// handleObjectUpload serves POST /api/v1/devices/{id}/objects for admins (a
// device integration authenticates with an admin key).
func (g *Gateway) handleObjectUpload(ctx *fasthttp.RequestCtx, c authz.Caller, parts []string) {
	if !g.authz.AdminAllows(c, "devices:write") {
		httpapi.WriteError(ctx, fasthttp.StatusForbidden, "storing media objects needs an admin key with devices:write")
		return
	}
	if _, ok := g.authz.Device(parts[1]); !ok {
		httpapi.WriteError(ctx, fasthttp.StatusNotFound, "unknown device "+parts[1])
		return
	}
	if !g.archive.Handle(ctx) {
		httpapi.WriteError(ctx, fasthttp.StatusNotFound, "no such endpoint")
	}
}
