package gateway

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/recorder"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/internal/httpjson"
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
		Authorizer:      access.Archive{S: g.access},
		WriteError:      writeArchiveError,
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

// syncRecorders starts and stops recordings to match the devices' `record`
// — with a cluster, of the cameras this node owns; it wants every recorded
// camera, so each has an owner whether or not anyone watches it.
func (g *Gateway) syncRecorders() {
	g.recMu.Lock()
	defer g.recMu.Unlock()
	want := map[string]bool{}
	n := g.cluster.Load()
	for _, d := range g.authz.Devices() {
		if !d.Record || d.Kind != "camera" {
			continue
		}
		switch {
		case !g.Config.Cluster.Enabled:
			want[d.ID] = true
		case n != nil:
			n.Want(d.ID)
			if _, owned := n.Owns(d.ID); owned || n.Moving(d.ID) {
				want[d.ID] = true
			}
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

// retryRecorders wakes the recordings of changed devices that could not
// record (their source may now send other codecs); they are not retried
// on a timer.
func (g *Gateway) retryRecorders(c session.Change) {
	if c.All {
		g.recorder.Retry(g.recorder.Recording()...)
		return
	}
	g.recorder.Retry(c.Devices...)
}

// writeArchiveError answers an archive error through the HTTP front's one
// mapping; a failure the mapping does not know (a disk error) is "archive
// temporarily unavailable", without its details.
func writeArchiveError(ctx *fasthttp.RequestCtx, err error) {
	if code, _ := httpapi.StatusOf(err); code == fasthttp.StatusInternalServerError {
		err = errArchiveUnavailable
	}
	httpapi.WriteErr(ctx, err)
}

var errArchiveUnavailable = fmt.Errorf("archive temporarily unavailable: %w", httpjson.ErrUnavailable)

// handleArchive serves /archive/… (playback, segments, download, objects).
func (g *Gateway) handleArchive(ctx *fasthttp.RequestCtx, _ ...string) error {
	if !g.archive.Handle(ctx) {
		return fmt.Errorf("%w: no such archive endpoint", httpjson.ErrNotFound)
	}
	return nil
}

// handleObjectUpload serves POST /api/v1/devices/{id}/objects for admins (a
// device integration authenticates with an admin key) whose reach includes
// the device. A photo taken by a scenario (?scenario=NAME) is stored only
// while the device's site runs scenario photos (seed 000: "Allow photos by
// scenarios", "Scenario execution rules … always or only when the system
// is armed"); otherwise it is a 409 and nothing is stored.
func (g *Gateway) handleObjectUpload(ctx *fasthttp.RequestCtx, p access.Principal, parts []string) error {
	c := p.Caller()
	if !g.authz.AdminAllows(c, "devices:write") {
		return fmt.Errorf("%w: storing media objects needs an admin key with devices:write", access.ErrForbidden)
	}
	if !g.authz.AdminSees(c, "devices", parts[1]) {
		return fmt.Errorf("%w: unknown device %s", access.ErrNotVisible, parts[1])
	}
	if ctx.QueryArgs().Has("scenario") && !g.authz.ScenarioPhotos(parts[1]) {
		return fmt.Errorf("device %s: photos by scenarios do not run now (its site's photo_scenarios is off, or scenario_rule is armed and the site is disarmed): %w",
			parts[1], authz.ErrConflict)
	}
	if !g.archive.Handle(ctx) {
		return fmt.Errorf("%w: no such endpoint", httpjson.ErrNotFound)
	}
	g.notifyObject(ctx, p.String(), parts[1])
	return nil
}
