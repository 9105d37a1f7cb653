package gateway

import (
	"errors"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/gateway/ptz"
)

// handleCameras serves /api/v1/cameras/{camera}/ptz and …/ptz/presets: the
// caller needs `ptz` on the camera (admins may always), holds the camera's
// lease while it steers, and every command lands in the audit log.
func (g *Gateway) handleCameras(ctx *fasthttp.RequestCtx, c authz.Caller, parts []string) {
	presets := len(parts) == 4 && parts[3] == "presets"
	if (len(parts) != 3 && !presets) || parts[2] != "ptz" {
		httpapi.WriteError(ctx, fasthttp.StatusNotFound, "use /api/v1/cameras/{camera}/ptz or …/ptz/presets")
		return
	}
	method := string(ctx.Method())
	if (presets && method != fasthttp.MethodGet) || (!presets && method != fasthttp.MethodPost) {
		httpapi.WriteError(ctx, fasthttp.StatusMethodNotAllowed, "POST …/ptz with a command; GET …/ptz/presets")
		return
	}
	var cmd ptz.Command
	if !presets {
		var err error
		if cmd, err = ptz.ParseCommand(ctx.PostBody()); err != nil {
			g.writePTZError(ctx, err)
			return
		}
	}
	camID := parts[1]
	dev, ok := g.authz.Device(camID)
	if !ok || dev.Kind != "camera" {
		httpapi.WriteError(ctx, fasthttp.StatusNotFound, "unknown camera "+camID)
		return
	}
	holder, err := g.ptzHolder(c, camID)
	if err != nil {
		g.authz.RecordAudit(authz.AuditEntry{Who: callerName(c), What: "ptz " + camID + " " + cmd.Op, Why: err.Error()})
		httpapi.WriteError(ctx, fasthttp.StatusForbidden, err.Error())
		return
	}
	if dev.PTZ == nil || dev.PTZ.OnvifURL == "" {
		httpapi.WriteError(ctx, fasthttp.StatusNotFound, "camera "+camID+" has no PTZ configured (device field ptz.onvif_url)")
		return
	}
	cam := ptz.Camera{ID: camID, OnvifURL: dev.PTZ.OnvifURL, Username: dev.PTZ.Username, Password: dev.PTZ.Password}
	if presets {
		list, err := g.ptz.Presets(ctx, cam, holder)
		if err != nil {
			g.writePTZError(ctx, err)
			return
		}
		httpapi.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"presets": list})
		return
	}
	res, err := g.ptz.Do(ctx, cam, holder, cmd)
	entry := authz.AuditEntry{Who: callerName(c), What: "ptz " + camID + " " + cmd.Op, Allowed: err == nil}
	if err != nil {
		entry.Why = err.Error()
	}
	g.authz.RecordAudit(entry)
	if err != nil {
		g.writePTZError(ctx, err)
		return
	}
	httpapi.WriteJSON(ctx, fasthttp.StatusOK, res)
}

// ptzHolder decides whether c may steer camera and with which priority.
func (g *Gateway) ptzHolder(c authz.Caller, camera string) (ptz.Holder, error) {
	switch {
	case c.Root:
		return ptz.Holder{ID: "root", Kind: "admin"}, nil
	case c.Admin != "":
		if !g.authz.AdminAllows(c, "ptz:write") {
			return ptz.Holder{}, errors.New("this admin's roles do not include ptz:write")
		}
		return ptz.Holder{ID: c.Admin, Kind: "admin"}, nil
	}
	d := g.authz.Check(c.Subject, camera, authz.ActionPTZ, time.Now())
	if !d.Allowed {
		return ptz.Holder{}, errors.New("ptz not allowed: " + d.Reason)
	}
	kind := "user"
	if s, ok := g.authz.Subject(c.Subject); ok && s.Kind != "" {
		kind = s.Kind
	}
	if strings.HasPrefix(d.Reason, "privacy_manager") {
		kind = "privacy_manager"
	}
	return ptz.Holder{ID: c.Subject, Kind: kind}, nil
}

func (g *Gateway) writePTZError(ctx *fasthttp.RequestCtx, err error) {
	status, body := ptz.HTTPError(err)
	httpapi.WriteJSON(ctx, status, body)
}

func callerName(c authz.Caller) string {
	switch {
	case c.Root:
		return "root"
	case c.Admin != "":
		return "admin:" + c.Admin
	}
	return "subject:" + c.Subject
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
