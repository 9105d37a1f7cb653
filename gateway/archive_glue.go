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
		Authorizer:      archive.AuthorizerFunc(g.authorizeArchive),
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

// authorizeArchive decides one archive request: the token's subject needs
// action on the device for footage recorded at footage.
func (g *Gateway) authorizeArchive(_ context.Context, raw, device, action string, footage time.Time) (archive.Viewer, error) {
	if g.access.isLinkToken(raw) {
		return g.authorizeArchiveLink(raw, device, action, footage)
	}
	claims, err := g.access.subjectOf(raw)
	if err != nil {
		return archive.Viewer{}, fmt.Errorf("%w: %w", archive.ErrUnauthenticated, err)
	}
	if _, ok := g.authz.Device(device); !ok {
		return archive.Viewer{}, fmt.Errorf("%w: %s", archive.ErrUnknownCamera, device)
	}
	act, err := authz.ParseAction(action)
	if err != nil {
		return archive.Viewer{}, fmt.Errorf("%w: %w", archive.ErrForbidden, err)
	}
	now := time.Now()
	d := g.authz.CheckFootage(claims.Subject, device, act, now, footage)
	if !d.Allowed {
		g.authz.RecordAudit(authz.AuditEntry{Who: "subject:" + claims.Subject, What: action + " " + device + " at " + footage.UTC().Format(time.RFC3339), Why: d.Reason})
		return archive.Viewer{}, fmt.Errorf("%w: %s", archive.ErrForbidden, d.Reason)
	}
	sound := g.authz.Check(claims.Subject, device, authz.ActionSound, now).Allowed
	return archive.Viewer{Subject: claims.Subject, Sound: sound}, nil
}

// authorizeArchiveLink decides an archive request made with a share link:
// the link's actions, window and footage window, and its creator's rights.
func (g *Gateway) authorizeArchiveLink(raw, device, action string, footage time.Time) (archive.Viewer, error) {
	claims, err := g.links.Verify(raw)
	if err != nil {
		return archive.Viewer{}, fmt.Errorf("%w: %w", archive.ErrUnauthenticated, err)
	}
	if claims.Device != device {
		return archive.Viewer{}, fmt.Errorf("%w: the link is for another camera", archive.ErrForbidden)
	}
	now := time.Now()
	if d := g.links.Decide(claims.LinkID, device, action, now, &footage); !d.Allowed {
		return archive.Viewer{}, fmt.Errorf("%w: %s", archive.ErrForbidden, d.Reason)
	}
	sound := g.links.Decide(claims.LinkID, device, "sound", now, nil).Allowed
	return archive.Viewer{Link: claims.LinkID, Sound: sound}, nil
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
