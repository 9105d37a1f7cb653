package gateway

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/ptz"
	"github.com/camgate/camgate/gateway/snapshot"
	"github.com/camgate/camgate/internal/httpjson"
)

// startSnapshots builds the snapshot service: ffmpeg for keyframes, the
// PTZ controller's ONVIF client for cameras' own snapshots, the archive
// for snapshots from the recording.
func (g *Gateway) startSnapshots() error {
	ff := &snapshot.FFmpeg{}
	if err := ff.Initialize(); err != nil {
		return err
	}
	if !ff.Available() {
		g.Logger.Warn("ffmpeg is not installed: snapshots of cameras without ONVIF answer 503 until it is on PATH")
	}
	g.ffmpeg = ff
	g.snapshots = &snapshot.Service{Hub: g.hub, Decoder: ff, ONVIF: g.ptz, Recordings: g.archive, Logger: g.Logger.With("component", "snapshot")}
	return g.snapshots.Initialize()
}

// handleSnapshot serves GET /api/v1/cameras/{camera}/snapshot.jpg[?at=]: the
// enforcement point decides (`live` now, or `archive` for the footage time
// at), then the snapshot service makes the JPEG.
func (g *Gateway) handleSnapshot(ctx *fasthttp.RequestCtx, params ...string) error {
	camID := params[0]
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		return fmt.Errorf("%w: use GET …/snapshot.jpg", httpjson.ErrMethodNotAllowed)
	}
	at, err := snapshotAt(ctx.QueryArgs().Peek("at"))
	if err != nil {
		return err
	}
	raw := viewerCredential(ctx)
	var allow func(time.Time) error
	if at.IsZero() {
		_, err = g.access.AuthorizeSnapshot(ctx, raw, camID)
	} else {
		allow, err = g.access.AuthorizeArchiveSnapshot(ctx, raw, camID, at)
	}
	if err != nil {
		return err
	}
	dev, ok := g.authz.Device(camID)
	if !ok || dev.Kind != "camera" {
		return fmt.Errorf("%w: unknown camera %s", httpjson.ErrNotFound, camID)
	}
	var img snapshot.Image
	if at.IsZero() {
		cam := snapshot.Camera{ID: camID}
		if dev.PTZ != nil && dev.PTZ.OnvifURL != "" {
			cam.ONVIF = &ptz.Camera{ID: camID, OnvifURL: dev.PTZ.OnvifURL, Username: dev.PTZ.Username, Password: dev.PTZ.Password}
		}
		img, err = g.snapshots.Live(ctx, cam)
	} else {
		img, err = g.snapshots.Recorded(ctx, camID, at, allow)
	}
	if err != nil {
		return err
	}
	h := &ctx.Response.Header
	h.SetContentType("image/jpeg")
	// Each answer was authorized for its own credential: no shared cache
	// may keep it.
	h.Set(fasthttp.HeaderCacheControl, "private, no-store")
	h.Set("X-Snapshot-Source", img.Source)
	h.Set("X-Snapshot-Time", img.Taken.UTC().Format(time.RFC3339Nano))
	if ctx.IsHead() {
		h.SetContentLength(len(img.JPEG))
		return nil
	}
	ctx.SetBody(img.JPEG)
	return nil
}

// snapshotAt parses ?at= (RFC 3339); none is the zero time (live).
func snapshotAt(v []byte) (time.Time, error) {
	if len(v) == 0 {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: at: %q is not an RFC 3339 time (e.g. 2026-12-03T08:00:00Z)", httpjson.ErrBadRequest, v)
	}
	return t, nil
}

// viewerCredential is the token of a viewer endpoint: ?token= or
// Authorization: Bearer, as on HLS and the archive.
func viewerCredential(ctx *fasthttp.RequestCtx) string {
	if t := ctx.QueryArgs().Peek("token"); len(t) > 0 {
		return string(t)
	}
	return httpapi.BearerToken(ctx)
}
