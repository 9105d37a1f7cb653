package ptz

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// maxSnapshotSize bounds a camera's snapshot JPEG.
const maxSnapshotSize = 16 << 20

// The ONVIF client also serves snapshots (GET
// /api/v1/cameras/{id}/snapshot.jpg): a camera with ONVIF configured makes
// its own JPEG, found with the media service's GetSnapshotUri.

// Snapshot fetches the camera's own JPEG: GetSnapshotUri for its first
// media profile (asked once, kept until a fetch fails), then an HTTP GET
// of that URI with the camera's credentials (Basic, or Digest when the
// camera asks for it). The credentials are sent only to the host of the
// device's onvif_url. It takes no lease.
func (c *Controller) Snapshot(ctx context.Context, cam Camera) ([]byte, error) {
	if err := c.check(cam); err != nil {
		return nil, err
	}
	uri, err := c.snapshotURI(ctx, cam)
	if err != nil {
		return nil, err
	}
	b, err := c.fetchSnapshot(ctx, cam, uri)
	if err != nil {
		c.mu.Lock()
		delete(c.snapshotURIs, cam.ID)
		c.mu.Unlock()
		return nil, err
	}
	return b, nil
}

// snapshotURI discovers the camera's snapshot URI, or returns the one
// found before for the same onvif_url.
func (c *Controller) snapshotURI(ctx context.Context, cam Camera) (string, error) {
	c.mu.Lock()
	known, ok := c.snapshotURIs[cam.ID]
	c.mu.Unlock()
	if ok && known.onvifURL == cam.OnvifURL {
		return known.uri, nil
	}
	_, media, err := c.deviceServices(ctx, cam)
	if err != nil {
		return "", err
	}
	if media.url == "" {
		return "", &CameraError{Op: "GetServices", Reason: "the device offers no media service"}
	}
	if media.url, err = resolveXAddr(cam.OnvifURL, media.url); err != nil {
		return "", err
	}
	profile, err := c.profile(ctx, cam, media)
	if err != nil {
		return "", err
	}
	var req any = &getSnapshotURI10Req{ProfileToken: profile}
	if media.ns == nsMedia20 {
		req = &getSnapshotURI20Req{ProfileToken: profile}
	}
	var resp getSnapshotURIResp
	if err := c.soap.call(ctx, media.url, creds(cam), media.ns, "GetSnapshotUri", req, &resp); err != nil {
		return "", err
	}
	uri, err := snapshotURL(media.url, resp.uri())
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.snapshotURIs[cam.ID] = snapshotEndpoint{onvifURL: cam.OnvifURL, uri: uri}
	c.mu.Unlock()
	return uri, nil
}

// snapshotURL checks the camera's answer: an http(s) URL, resolved against
// the media service when relative.
func snapshotURL(mediaURL, raw string) (string, error) {
	if raw == "" {
		return "", &CameraError{Op: "GetSnapshotUri", Reason: "the camera gave no snapshot URI"}
	}
	base, err := url.Parse(mediaURL)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotConfigured, err)
	}
	ref, err := url.Parse(raw)
	if err != nil {
		return "", &CameraError{Op: "GetSnapshotUri", Reason: cameraText(fmt.Sprintf("snapshot URI %q is not a URL", raw))}
	}
	u := base.ResolveReference(ref)
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &CameraError{Op: "GetSnapshotUri", Reason: cameraText(fmt.Sprintf("snapshot URI %q is not http(s)", raw))}
	}
	u.User = nil // credentials are the device's, never the camera's URL's
	return u.String(), nil
}

// fetchSnapshot GETs the snapshot URI, answering one Basic or Digest
// challenge.
func (c *Controller) fetchSnapshot(ctx context.Context, cam Camera, uri string) ([]byte, error) {
	const op = "snapshot"
	ctx, cancel := context.WithTimeout(ctx, c.soap.requestTimeout())
	defer cancel()
	sameHost := false
	if dev, err := url.Parse(cam.OnvifURL); err == nil {
		if u, err := url.Parse(uri); err == nil {
			sameHost = u.Host == dev.Host
		}
	}
	var auth string
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
		if err != nil {
			return nil, &CameraError{Op: op, Reason: "bad snapshot URI"}
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := c.soap.http.Do(req)
		if err != nil {
			return nil, transportError(ctx, op, err)
		}
		if res.StatusCode == http.StatusUnauthorized && attempt == 0 && sameHost && cam.Username != "" {
			auth = authorization(res.Header.Values("WWW-Authenticate"), cam.Username, cam.Password, req.Method, req.URL.RequestURI())
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
			if auth != "" {
				continue
			}
			return nil, &CameraError{Op: op, Reason: "HTTP 401 with no Basic or Digest challenge"}
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return nil, &CameraError{Op: op, Reason: fmt.Sprintf("HTTP %d", res.StatusCode)}
		}
		b, err := io.ReadAll(io.LimitReader(res.Body, maxSnapshotSize+1))
		if err != nil {
			return nil, transportError(ctx, op, err)
		}
		if len(b) > maxSnapshotSize {
			return nil, &CameraError{Op: op, Reason: "snapshot larger than 16 MiB"}
		}
		return b, nil
	}
}

// snapshotEndpoint is a camera's snapshot URI as discovered from onvifURL.
type snapshotEndpoint struct {
	onvifURL, uri string
}
