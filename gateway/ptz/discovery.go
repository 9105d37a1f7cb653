package ptz

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

// discover returns the camera's PTZ service URL and profile token, asking the
// device only the first time (and after a failure). Concurrent first commands
// to one camera may both ask; the answers are the same.
func (c *Controller) discover(ctx context.Context, cam Camera) (endpoints, error) {
	c.mu.Lock()
	ep, ok := c.endpoints[cam.ID]
	c.mu.Unlock()
	if ok && ep.onvifURL == cam.OnvifURL {
		return ep, nil
	}
	ptzURL, media, err := c.services(ctx, cam)
	if err == nil {
		ep = endpoints{onvifURL: cam.OnvifURL, ptz: ptzURL}
		ep.profile, err = c.profile(ctx, cam, media)
	}
	if err != nil {
		c.failed(cam, "discovery", err)
		return endpoints{}, err
	}
	c.mu.Lock()
	c.endpoints[cam.ID] = ep
	c.mu.Unlock()
	return ep, nil
}

// mediaService is a media service address and the namespace it speaks.
type mediaService struct {
	url, ns string
}

// services asks the device service for the PTZ and media services:
// GetServices, or GetCapabilities on devices that fault on it (older than
// ONVIF 2.0).
func (c *Controller) services(ctx context.Context, cam Camera) (string, mediaService, error) {
	ptzAddr, media, err := c.deviceServices(ctx, cam)
	if err != nil {
		return "", media, err
	}
	if ptzAddr == "" {
		return "", media, &CameraError{Op: "GetServices", Reason: "the device offers no PTZ service"}
	}
	if media.url == "" {
		return "", media, &CameraError{Op: "GetServices", Reason: "the device offers no media service"}
	}
	ptzURL, err := resolveXAddr(cam.OnvifURL, ptzAddr)
	if err != nil {
		return "", media, err
	}
	media.url, err = resolveXAddr(cam.OnvifURL, media.url)
	return ptzURL, media, err
}

// deviceServices returns the PTZ and media service addresses the device
// lists, unresolved, either possibly empty.
func (c *Controller) deviceServices(ctx context.Context, cam Camera) (ptzAddr string, media mediaService, err error) {
	var svc getServicesResp
	err = c.soap.call(ctx, cam.OnvifURL, creds(cam), nsDevice, "GetServices", &getServicesReq{}, &svc)
	var camErr *CameraError
	switch {
	case err == nil:
		var media20 string
		for _, s := range svc.Services {
			switch s.Namespace {
			case nsPTZ:
				ptzAddr = s.XAddr
			case nsMedia10:
				media.url = s.XAddr
			case nsMedia20:
				media20 = s.XAddr
			}
		}
		media.ns = nsMedia10
		if media.url == "" && media20 != "" {
			media = mediaService{url: media20, ns: nsMedia20}
		}
	case errors.As(err, &camErr):
		var caps getCapabilitiesResp
		if err := c.soap.call(ctx, cam.OnvifURL, creds(cam), nsDevice, "GetCapabilities", &getCapabilitiesReq{Category: "All"}, &caps); err != nil {
			return "", media, err
		}
		ptzAddr, media = caps.PTZ, mediaService{url: caps.Media, ns: nsMedia10}
	default:
		return "", media, err
	}
	return ptzAddr, media, nil
}

// resolveXAddr accepts absolute http(s) service addresses and resolves
// relative ones against the device URL.
func resolveXAddr(deviceURL, xaddr string) (string, error) {
	base, err := url.Parse(deviceURL)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotConfigured, err)
	}
	ref, err := url.Parse(xaddr)
	if err != nil {
		return "", &CameraError{Op: "GetServices", Reason: fmt.Sprintf("service address %q is not a URL", xaddr)}
	}
	u := base.ResolveReference(ref)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", &CameraError{Op: "GetServices", Reason: fmt.Sprintf("service address %q is not http(s)", xaddr)}
	}
	return u.String(), nil
}

// profile picks the first media profile that has a PTZ configuration, else
// the first profile: PTZ commands name a profile, and a profile without PTZ
// configuration is refused by most cameras.
func (c *Controller) profile(ctx context.Context, cam Camera, media mediaService) (string, error) {
	var req any = &getProfiles10Req{}
	if media.ns == nsMedia20 {
		req = &getProfiles20Req{Type: "PTZ"}
	}
	var resp getProfilesResp
	if err := c.soap.call(ctx, media.url, creds(cam), media.ns, "GetProfiles", req, &resp); err != nil {
		return "", err
	}
	first := ""
	for _, p := range resp.Profiles {
		if p.Token == "" {
			continue
		}
		if p.PTZ10 != nil || p.PTZ20 != nil {
			return p.Token, nil
		}
		if first == "" {
			first = p.Token
		}
	}
	if first == "" {
		return "", &CameraError{Op: "GetProfiles", Reason: "the device has no media profile"}
	}
	return first, nil
}
