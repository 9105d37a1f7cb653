package ptz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Camera is what the controller needs of a device: its id and its `ptz`
// configuration (DESIGN §6).
type Camera struct {
	ID       string
	OnvifURL string // device service, e.g. http://10.0.0.5/onvif/device_service
	Username string // empty: send no WS-Security header
	Password string
}

// LogValue keeps the password out of logs.
func (c Camera) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", c.ID), slog.String("onvif_url", c.OnvifURL))
}

// Preset is a position stored in the camera. Position axes are set when the
// camera reports them.
type Preset struct {
	Token string   `json:"token"`
	Name  string   `json:"name"`
	Pan   *float64 `json:"pan,omitempty"`
	Tilt  *float64 `json:"tilt,omitempty"`
	Zoom  *float64 `json:"zoom,omitempty"`
}

// Result is the answer to a command the camera accepted.
type Result struct {
	Camera     string    `json:"camera"`
	Op         string    `json:"op"`
	Holder     Holder    `json:"holder"`
	LeaseUntil time.Time `json:"lease_until"`
	// TookOverFrom is the holder this command took the camera from (a
	// higher-priority take-over), when it did.
	TookOverFrom *Holder `json:"took_over_from,omitempty"`
}

// Controller sends PTZ commands to cameras for lease holders. Set the fields,
// call Initialize, then use it from any goroutine; Close when done.
type Controller struct {
	// Timeout bounds each ONVIF request. Default 5s. SetTimeout changes it
	// while running.
	Timeout time.Duration
	// LeaseTTL is how long a lease lasts after the holder's last command.
	// Default 5s.
	LeaseTTL time.Duration
	// Priorities gives a holder's priority by Kind when Holder.Priority is 0.
	// Default DefaultPriorities(). Copied by Initialize.
	Priorities map[string]int
	// Leases stores the leases. Default NewMemoryLeases() (single node).
	Leases LeaseStore
	// Now is the clock for leases and WS-Security timestamps. Default time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger

	soap *soapClient

	// mu guards endpoints and snapshotURIs: per camera id, the services
	// found on the device and its snapshot URI.
	mu           sync.Mutex
	endpoints    map[string]endpoints
	snapshotURIs map[string]snapshotEndpoint
}

// endpoints is what discovery found on a camera, kept until a command to it
// fails (the camera may have been reconfigured or rebooted with new tokens).
type endpoints struct {
	onvifURL string // the device URL this was discovered from
	ptz      string
	profile  string
}

// Initialize applies defaults, validates and builds the HTTP client.
func (c *Controller) Initialize() error {
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("ptz: Timeout must not be negative, got %v", c.Timeout)
	case c.LeaseTTL < 0:
		return fmt.Errorf("ptz: LeaseTTL must not be negative, got %v", c.LeaseTTL)
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 5 * time.Second
	}
	prios := DefaultPriorities()
	if c.Priorities != nil {
		prios = make(map[string]int, len(c.Priorities))
		for k, v := range c.Priorities {
			prios[k] = v
		}
	}
	c.Priorities = prios
	if c.Leases == nil {
		c.Leases = NewMemoryLeases()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 2
	transport.DialContext = (&net.Dialer{Timeout: c.Timeout, KeepAlive: 30 * time.Second}).DialContext
	c.soap = &soapClient{
		// No client-wide timeout: each request carries its own deadline.
		http: &http.Client{Transport: transport, CheckRedirect: noRedirects},
		now:  c.Now,
	}
	c.soap.timeout.Store(int64(c.Timeout))
	c.endpoints = make(map[string]endpoints)
	c.snapshotURIs = make(map[string]snapshotEndpoint)
	return nil
}

// SetTimeout changes Timeout for the ONVIF requests that start afterwards
// (a configuration reload); a d that is not positive is ignored. The dial
// timeout stays Initialize's, but every request's deadline bounds its dial
// too. Call it after Initialize.
func (c *Controller) SetTimeout(d time.Duration) {
	if d > 0 && c.soap != nil {
		c.soap.timeout.Store(int64(d))
	}
}

// noRedirects: a SOAP POST must not be silently turned into a GET elsewhere.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Close releases idle connections to cameras.
func (c *Controller) Close() {
	if c.soap != nil {
		c.soap.http.CloseIdleConnections()
	}
}

// Do validates cmd, takes or renews the camera's lease for h, and sends the
// command. Invalid commands and refused leases reach no camera.
func (c *Controller) Do(ctx context.Context, cam Camera, h Holder, cmd Command) (Result, error) {
	if err := cmd.Validate(); err != nil {
		return Result{}, err
	}
	if err := c.check(cam); err != nil {
		return Result{}, err
	}
	h = c.resolve(h)
	lease, err := c.Leases.TryAcquire(ctx, cam.ID, h, c.LeaseTTL, c.Now())
	var held *ErrLeaseHeld
	switch {
	case errors.As(err, &held):
		c.Logger.Debug("ptz lease refused", "camera", cam, "holder", h.ID, "held_by", held.Holder.ID)
		return Result{}, err
	case err != nil:
		return Result{}, fmt.Errorf("ptz: camera %s: lease store: %w", cam.ID, err)
	}
	ep, err := c.discover(ctx, cam)
	if err != nil {
		return Result{}, err
	}
	req, op := ptzRequest(ep.profile, cmd)
	if err := c.soap.call(ctx, ep.ptz, creds(cam), nsPTZ, op, req, nil); err != nil {
		c.failed(cam, op, err)
		return Result{}, err
	}
	c.Logger.Debug("ptz command", "camera", cam, "op", op, "holder", h.ID, "kind", h.Kind)
	return Result{Camera: cam.ID, Op: cmd.Op, Holder: h, LeaseUntil: lease.Until, TookOverFrom: lease.TakenFrom}, nil
}

// Presets lists the camera's presets. It does not take the lease: it moves
// nothing. h is kept for the log.
func (c *Controller) Presets(ctx context.Context, cam Camera, h Holder) ([]Preset, error) {
	if err := c.check(cam); err != nil {
		return nil, err
	}
	ep, err := c.discover(ctx, cam)
	if err != nil {
		return nil, err
	}
	var resp getPresetsResp
	if err := c.soap.call(ctx, ep.ptz, creds(cam), nsPTZ, "GetPresets", &getPresetsReq{ProfileToken: ep.profile}, &resp); err != nil {
		c.failed(cam, "GetPresets", err)
		return nil, err
	}
	c.Logger.Debug("ptz presets", "camera", cam, "holder", h.ID, "count", len(resp.Presets))
	return resp.presets(), nil
}

// Release gives the camera up early if h holds it.
func (c *Controller) Release(ctx context.Context, cam Camera, h Holder) error {
	if c.soap == nil {
		return ErrNotInitialized
	}
	return c.Leases.Release(ctx, cam.ID, c.resolve(h))
}

// resolve fills in a holder's priority from its kind.
func (c *Controller) resolve(h Holder) Holder {
	if h.Priority == 0 {
		h.Priority = c.Priorities[h.Kind]
	}
	return h
}

func (c *Controller) check(cam Camera) error {
	if c.soap == nil {
		return ErrNotInitialized
	}
	if cam.OnvifURL == "" {
		return fmt.Errorf("%w: camera %s has no ptz.onvif_url", ErrNotConfigured, cam.ID)
	}
	u, err := url.Parse(cam.OnvifURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: camera %s: ptz.onvif_url is not an http(s) URL", ErrNotConfigured, cam.ID)
	}
	return nil
}

func creds(cam Camera) credentials {
	return credentials{username: cam.Username, password: cam.Password}
}

// failed forgets what discovery found after a camera error, so the next
// command rediscovers, and logs what the viewer will not see.
func (c *Controller) failed(cam Camera, op string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	c.mu.Lock()
	delete(c.endpoints, cam.ID)
	c.mu.Unlock()
	c.Logger.Warn("ptz camera request failed", "camera", cam, "op", op, "error", err)
}
