package links

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/internal/httpjson"
)

// The viewer page's template, script and style, and hls.js 1.7.4 (the
// npm package's dist/hls.min.js and LICENSE, Apache-2.0) served at
// /s/assets/ for browsers without WebRTC.
//
//go:embed page/viewer.html page/viewer.js page/viewer.css
var pageFiles embed.FS

//go:embed assets/hls.min.js assets/LICENSE
var assetFiles embed.FS

// viewerPage is built once: the template and the CSP whose hashes allow
// exactly the inline script and style.
type viewerPage struct {
	tmpl   *template.Template
	script template.HTML
	style  template.HTML
	csp    string
}

func newViewerPage() (*viewerPage, error) {
	html, err := pageFiles.ReadFile("page/viewer.html")
	if err != nil {
		return nil, err
	}
	js, err := pageFiles.ReadFile("page/viewer.js")
	if err != nil {
		return nil, err
	}
	css, err := pageFiles.ReadFile("page/viewer.css")
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("viewer").Parse(string(html))
	if err != nil {
		return nil, err
	}
	return &viewerPage{
		tmpl:   tmpl,
		script: template.HTML("<script>" + string(js) + "</script>"),
		style:  template.HTML("<style>" + string(css) + "</style>"),
		// Only our own origin, the two inline blocks by hash, and blob: media
		// (hls.js feeds the video element through a MediaSource blob URL).
		csp: "default-src 'none'; script-src 'self' 'sha256-" + hash(js) + "'; style-src 'sha256-" + hash(css) +
			"'; media-src 'self' blob:; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	}, nil
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// pageData fills the template.
type pageData struct {
	Title, Heading, Message string
	Player                  bool
	Camera, CameraName      string
	Token                   string
	From, Until             string // RFC 3339, localized by the script
	FromText, UntilText     string // UTC, for browsers without script
	Script, Style           template.HTML
}

// pageOutcome is what the page shows for a token that does not play.
type pageOutcome struct {
	status           int
	heading, message string
	showCamera       bool
}

// outcomeFor maps a Verify error or a Decide reason to the page, in one
// place: 404 for what is not a link, 410 for what ended for good, 403 for
// what may change (not active yet, disabled, no longer allowed).
func outcomeFor(err error, reason string) pageOutcome {
	switch {
	case errors.Is(err, ErrNotYetValid) || reason == ReasonNotYetActive:
		return pageOutcome{fasthttp.StatusForbidden, "This link is not active yet", "Please come back when it opens.", true}
	case errors.Is(err, ErrExpired) || reason == ReasonExpired:
		return pageOutcome{fasthttp.StatusGone, "This link has expired", "The time it was shared for is over.", true}
	case err != nil || reason == ReasonUnknown:
		return pageOutcome{fasthttp.StatusNotFound, "This link is not valid", "The address may be incomplete or mistyped, or the link no longer exists.", false}
	case reason == ReasonDisabled:
		return pageOutcome{fasthttp.StatusForbidden, "This link has been disabled", "Its owner turned it off. It may be turned on again later.", true}
	case reason == ReasonDeleted:
		return pageOutcome{fasthttp.StatusGone, "This link has been removed", "Its owner deleted it; it will not work again.", true}
	case reason == ReasonUnavailable:
		return pageOutcome{fasthttp.StatusServiceUnavailable, "Temporarily unavailable", "The link could not be checked right now. Please try again in a moment.", true}
	}
	return pageOutcome{fasthttp.StatusForbidden, "This link no longer gives access", "It does not allow live viewing of this camera any more.", true}
}

// HandleViewerPage serves GET /s/{token}: the player for a link that allows
// live viewing now, else a friendly page with the right status (403 not
// active yet / disabled / no longer allowed, 410 expired / deleted, 404
// invalid). The token never reaches the logs: only its fingerprint.
func (s *Service) HandleViewerPage(ctx *fasthttp.RequestCtx, token string) {
	setPageHeaders(ctx, s.page.csp)
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("method not allowed\n")
		return
	}
	now := s.Now()
	claims, err := s.Verify(token)
	reason := ""
	if err == nil {
		reason = s.Decide(claims.LinkID, claims.Device, "live", now, nil).Reason
	}
	d := pageData{Script: s.page.script, Style: s.page.style}
	if claims.LinkID != "" {
		d.CameraName = claims.Device
		if name, ok := s.Policy.Device(claims.Device); ok && name != "" {
			d.CameraName = name
		}
		d.From, d.Until = claims.NotBefore.UTC().Format(time.RFC3339), claims.NotAfter.UTC().Format(time.RFC3339)
		d.FromText, d.UntilText = utcText(claims.NotBefore), utcText(claims.NotAfter)
	}
	log := s.Logger.With("token", Fingerprint(token), "link", claims.LinkID, "remote", ctx.RemoteIP().String())
	status := fasthttp.StatusOK
	if err == nil && reason == ReasonAllowed {
		d.Player, d.Camera, d.Token = true, claims.Device, token
		d.Title = d.CameraName + " — live"
		log.Debug("share link page served")
	} else {
		o := outcomeFor(err, reason)
		status, d.Heading, d.Message, d.Title = o.status, o.heading, o.message, o.heading
		if !o.showCamera {
			d.CameraName, d.From = "", ""
		}
		why := reason
		if err != nil {
			why = err.Error()
		}
		log.Info("share link page refused", "status", status, "why", why)
	}
	var buf bytes.Buffer
	if err := s.page.tmpl.Execute(&buf, d); err != nil {
		log.Error("rendering the share link page", "error", err)
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("the page could not be rendered\n")
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBody(buf.Bytes())
}

func utcText(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func setPageHeaders(ctx *fasthttp.RequestCtx, csp string) {
	h := &ctx.Response.Header
	h.Set("Referrer-Policy", "no-referrer")
	h.Set(fasthttp.HeaderCacheControl, "no-store")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

// HandleAsset serves /s/assets/{name}: hls.min.js and its LICENSE. They
// hold no secret, so unlike the page they may be cached.
func (s *Service) HandleAsset(ctx *fasthttp.RequestCtx, name string) {
	var ctype string
	switch name {
	case "hls.min.js":
		ctype = "text/javascript; charset=utf-8"
	case "LICENSE", "hls.js-LICENSE":
		name, ctype = "LICENSE", "text/plain; charset=utf-8"
	default:
		httpjson.WriteError(ctx, fasthttp.StatusNotFound, "no such asset")
		return
	}
	body := s.assets[name]
	h := &ctx.Response.Header
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set(fasthttp.HeaderCacheControl, "public, max-age=86400")
	ctx.SetContentType(ctype)
	ctx.Response.SetBodyRaw(body) // shared, never modified
}

func loadAssets() (map[string][]byte, error) {
	m := make(map[string][]byte, 2)
	for _, name := range []string{"hls.min.js", "LICENSE"} {
		b, err := assetFiles.ReadFile("assets/" + name)
		if err != nil {
			return nil, err
		}
		m[name] = b
	}
	return m, nil
}
