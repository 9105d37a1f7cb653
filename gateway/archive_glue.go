package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/cluster"
	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/recorder"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/transcode"
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
		AudioEncoder:    g.archiveAudio(),
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

// archiveAudio is what encodes recorded G.711 (stored as PCM) into AAC for
// HLS playback, as the live HLS does (sessions.audio_transcode); nil (the
// audio left out, and said) with it off or without ffmpeg.
func (g *Gateway) archiveAudio() archive.AudioEncoder {
	if g.Config.Sessions.AudioTranscode != "auto" {
		return nil
	}
	e := &transcode.PCMEncoder{}
	if err := e.Start(); err != nil {
		g.Logger.Warn("archive playback over HLS leaves G.711 cameras' audio out", "error", err)
		return nil
	}
	return e
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
// temporarily unavailable", without its details. A segment whose holder is
// down is a 503 that names no node (viewers do not learn the cluster's
// node ids; the archive logs which one).
func writeArchiveError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, archive.ErrHolderDown) {
		err = errHolderDown
	}
	if code, _ := httpapi.StatusOf(err); code == fasthttp.StatusInternalServerError {
		err = errArchiveUnavailable
	}
	httpapi.WriteErr(ctx, err)
}

var (
	errArchiveUnavailable = fmt.Errorf("archive temporarily unavailable: %w", httpjson.ErrUnavailable)
	errHolderDown         = fmt.Errorf("%w: footage in this range is held by a cluster node that is down; it is readable again when that node is back", httpjson.ErrUnavailable)
)

// handleArchive serves /archive/… (playback, segments, download, objects)
// and, in a cluster, /archive/{camera}/held/{segment}.mp4 for the other
// nodes.
func (g *Gateway) handleArchive(ctx *fasthttp.RequestCtx, p ...string) error {
	if len(p) == 2 && strings.HasPrefix(p[1], "held/") {
		return g.serveHeld(ctx, p[0], strings.TrimPrefix(p[1], "held/"))
	}
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

// joinArchive puts the archive in the cluster: it publishes the segments
// this node records to the shared index in Redis and serves those other
// nodes hold, read from them with node tokens (docs/cluster.md).
func (g *Gateway) joinArchive(n *cluster.Node) error {
	shared := &archive.RedisIndex{Client: g.redis.client, Node: n.ID,
		TTL: time.Duration(g.Config.Archive.Retention) + 24*time.Hour}
	if err := shared.Initialize(); err != nil {
		return err
	}
	peers := &archive.PeerClient{
		Locate: func(ctx context.Context, node string) (string, error) {
			m, ok, err := n.Member(ctx, node)
			switch {
			case err != nil:
				return "", err
			case !ok:
				return "", fmt.Errorf("%w: node %s is down", archive.ErrHolderDown, node)
			case m.HTTP == "":
				return "", fmt.Errorf("%w: node %s announces no HTTP address", archive.ErrHolderDown, node)
			}
			return m.HTTP, nil
		},
		Token: func(holder, camera, segment string) string {
			return g.access.ArchivePeerToken(n.ID, holder, camera, segment)
		},
		Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}},
	}
	return g.archive.JoinCluster(archive.Cluster{Shared: shared, Peers: peers, Node: n.ID})
}

// serveHeld answers another node's read of a segment this node holds,
// authenticated by a node token for exactly that segment. It is no viewer
// endpoint: the reading node has authorized its viewer for the segment.
func (g *Gateway) serveHeld(ctx *fasthttp.RequestCtx, camera, file string) error {
	n := g.cluster.Load()
	id, ok := strings.CutSuffix(file, ".mp4")
	if n == nil || !ok || !ctx.IsGet() {
		return fmt.Errorf("%w: no such archive endpoint", httpjson.ErrNotFound)
	}
	var tok string
	if h := string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		tok = strings.TrimSpace(h[7:])
	}
	if _, err := g.access.AuthenticateArchivePeer(ctx, tok, n.ID, camera, id); err != nil {
		return err
	}
	g.archive.ServeHeld(ctx, camera, id)
	return nil
}
