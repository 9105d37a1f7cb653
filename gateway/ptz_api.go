package gateway

import (
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/ptz"
	"github.com/camgate/camgate/internal/httpjson"
)

// handleCameras serves GET /api/v1/cameras[/{camera}] (cameras_api.go) and
// /api/v1/cameras/{camera}/ptz and …/ptz/presets: the
// enforcement point decides whether the caller may steer the camera and at
// which priority, the caller holds the camera's lease while it steers, and
// every command lands in the audit log.
func (g *Gateway) handleCameras(ctx *fasthttp.RequestCtx, p access.Principal, parts []string) error {
	if len(parts) <= 2 {
		return g.listCameras(ctx, p, parts)
	}
	presets := len(parts) == 4 && parts[3] == "presets"
	if (len(parts) != 3 && !presets) || parts[2] != "ptz" {
		return fmt.Errorf("%w: use /api/v1/cameras/{camera}/ptz or …/ptz/presets", httpjson.ErrNotFound)
	}
	method := string(ctx.Method())
	if (presets && method != fasthttp.MethodGet) || (!presets && method != fasthttp.MethodPost) {
		return fmt.Errorf("%w: POST …/ptz with a command; GET …/ptz/presets", httpjson.ErrMethodNotAllowed)
	}
	var cmd ptz.Command
	if !presets {
		var err error
		if cmd, err = ptz.ParseCommand(ctx.PostBody()); err != nil {
			return err
		}
	}
	camID := parts[1]
	dev, ok := g.authz.Device(camID)
	if !ok || dev.Kind != "camera" {
		return fmt.Errorf("%w: unknown camera %s", access.ErrNotVisible, camID)
	}
	holder, err := g.access.PTZHolder(p, camID)
	if err != nil {
		g.authz.RecordAudit(authz.AuditEntry{Who: p.String(), What: "ptz " + camID + " " + cmd.Op, Why: err.Error()})
		return err
	}
	if dev.PTZ == nil || dev.PTZ.OnvifURL == "" {
		return fmt.Errorf("camera %s (device field ptz.onvif_url): %w", camID, ptz.ErrNotConfigured)
	}
	cam := ptz.Camera{ID: camID, OnvifURL: dev.PTZ.OnvifURL, Username: dev.PTZ.Username, Password: dev.PTZ.Password}
	if presets {
		list, err := g.ptz.Presets(ctx, cam, holder)
		if err != nil {
			return err
		}
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"presets": list})
		return nil
	}
	res, err := g.ptz.Do(ctx, cam, holder, cmd)
	entry := authz.AuditEntry{Who: p.String(), What: "ptz " + camID + " " + cmd.Op, Allowed: err == nil}
	if err != nil {
		entry.Why = err.Error()
	}
	g.authz.RecordAudit(entry)
	if err != nil {
		return err
	}
	g.notifyTakeover(camID, res)
	httpjson.WriteJSON(ctx, fasthttp.StatusOK, res)
	return nil
}

// ptzPriorities turns the configured order (highest first) into the
// controller's priority table. Kinds not listed inherit from their peers
// (an employee ranks with its company, an integrator with installers);
// admins rank above everyone unless listed; links come last.
func ptzPriorities(order []string) map[string]int {
	p := map[string]int{}
	for i, k := range order {
		p[k] = (len(order) - i) * 10
	}
	inherit := map[string]string{ptz.KindEmployee: ptz.KindCompany, ptz.KindIntegrator: ptz.KindInstaller}
	for kind, peer := range inherit {
		if _, ok := p[kind]; !ok {
			p[kind] = p[peer]
		}
	}
	if _, ok := p[ptz.KindAdmin]; !ok {
		p[ptz.KindAdmin] = (len(order) + 1) * 10
	}
	if _, ok := p[ptz.KindLink]; !ok {
		p[ptz.KindLink] = 1
	}
	return p
}
