package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"strings"
	"testing"
)

const (
	camSource   = "rtsp://admin:cam-secret-pw@10.0.0.9:554/s1"
	camOnvif    = "http://10.0.0.9/onvif/device_service"
	camPTZPass  = "onvif-secret-pw"
	redactedSrc = "rtsp://admin:********@10.0.0.9:554/s1"
)

func putSecretCamera(h *harness) {
	h.must(root, "PUT", "/devices/sec1", map[string]any{"site": "hq", "source": camSource,
		"ptz": map[string]any{"onvif_url": camOnvif, "username": "onvif", "password": camPTZPass}})
}

// Issue 15 hole 12: the password inside a source URL is redacted on every API
// read, like the PTZ password; the gateway's Go API still gets the real one,
// and a GET-modify-PUT keeps it.
func TestDeviceReadsRedactSourceCredentials(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/roles/devread", map[string]any{"actions": []string{}, "sections": []string{"devices:read"}})
	reader := adminKey(t, h, "reader", map[string]any{"roles": []string{"devread"}})
	res, err := h.call(root, "PUT", "/devices/sec1", map[string]any{"site": "hq", "source": camSource,
		"ptz": map[string]any{"onvif_url": camOnvif, "username": "onvif", "password": camPTZPass}})
	if err != nil {
		t.Fatal(err)
	}
	if b := mustJSON(t, res.Body); strings.Contains(b, "cam-secret-pw") {
		t.Fatalf("PUT answer shows the source password: %s", b)
	}
	for _, c := range []Caller{root, reader} {
		for _, path := range []string{"/devices/sec1", "/devices"} {
			res, err := h.call(c, "GET", path, nil)
			if err != nil {
				t.Fatal(err)
			}
			b := mustJSON(t, res.Body)
			if strings.Contains(b, "cam-secret-pw") || strings.Contains(b, camPTZPass) {
				t.Fatalf("GET %s as %v leaks a device password: %s", path, c, b)
			}
			if !strings.Contains(b, redactedSrc) {
				t.Fatalf("GET %s as %v = %s; want source %s", path, c, b, redactedSrc)
			}
		}
	}
	if d, _ := h.s.Device("sec1"); d.Source != camSource {
		t.Fatalf("Service.Device source = %q; want the real %q for the gateway", d.Source, camSource)
	}
	dev := h.must(root, "GET", "/devices/sec1", nil).(map[string]any)
	dev["name"] = "renamed"
	h.must(root, "PUT", "/devices/sec1", dev)
	if d, _ := h.s.Device("sec1"); d.Source != camSource || d.PTZ.Password != camPTZPass || d.Name != "renamed" {
		t.Fatalf("after GET-modify-PUT Device = %+v; want both passwords kept", d)
	}
	// A source without a password is shown as it is.
	h.must(root, "PUT", "/devices/nopw", map[string]any{"site": "hq", "source": "rtsp://viewer@10.0.0.8/s"})
	if got := h.must(root, "GET", "/devices/nopw", nil).(map[string]any)["source"]; got != "rtsp://viewer@10.0.0.8/s" {
		t.Fatalf("source without password read as %v", got)
	}
}

// Issue 15 hole 5: the redacted placeholder (or no password) keeps a stored
// password only while it would go to the same place; changing the ONVIF URL,
// the PTZ user name, or the source's host or user needs the password again.
func TestDeviceSecretsFollowTheirTarget(t *testing.T) {
	h := newHarness(t)
	h.base()
	putSecretCamera(h)
	ptz := func(url, user, pass string) map[string]any {
		p := map[string]any{"onvif_url": url, "username": user}
		if pass != "" {
			p["password"] = pass
		}
		return p
	}
	dev := func(source string, p map[string]any) map[string]any {
		return map[string]any{"site": "hq", "source": source, "ptz": p}
	}
	cases := []struct {
		name, path string
		body       map[string]any
		field      string
	}{
		{"onvif_url repointed with the placeholder", "/devices/sec1", dev(redactedSrc, ptz("http://attacker.example/onvif", "onvif", RedactedPassword)), "ptz.password"},
		{"onvif_url repointed without a password", "/devices/sec1", dev(redactedSrc, ptz("http://attacker.example/onvif", "onvif", "")), "ptz.password"},
		{"onvif_url port changed with the placeholder", "/devices/sec1", dev(redactedSrc, ptz("http://10.0.0.9:8080/onvif/device_service", "onvif", RedactedPassword)), "ptz.password"},
		{"ptz username changed with the placeholder", "/devices/sec1", dev(redactedSrc, ptz(camOnvif, "other", RedactedPassword)), "ptz.password"},
		{"source host changed with the placeholder", "/devices/sec1", dev("rtsp://admin:********@attacker.example:554/s1", ptz(camOnvif, "onvif", RedactedPassword)), "source"},
		{"source user changed with the placeholder", "/devices/sec1", dev("rtsp://root:********@10.0.0.9:554/s1", ptz(camOnvif, "onvif", RedactedPassword)), "source"},
		{"source scheme changed with the placeholder", "/devices/sec1", dev("rtsps://admin:********@10.0.0.9:554/s1", ptz(camOnvif, "onvif", RedactedPassword)), "source"},
		{"new device with the ptz placeholder", "/devices/sec2", dev("builtin:demo", ptz(camOnvif, "onvif", RedactedPassword)), "ptz.password"},
		{"new device with the source placeholder", "/devices/sec2", dev(redactedSrc, nil), "source"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if p, _ := tc.body["ptz"].(map[string]any); p == nil {
				delete(tc.body, "ptz")
			}
			expectRefused(t, h, root, "PUT", tc.path, tc.body, nil, tc.field, "")
			if d, _ := h.s.Device("sec1"); d.Source != camSource || d.PTZ.OnvifURL != camOnvif || d.PTZ.Password != camPTZPass {
				t.Fatalf("after a refused write Device = %+v", d)
			}
		})
	}
	_, err := h.call(root, "PUT", "/devices/sec1", dev(redactedSrc, ptz("http://attacker.example/onvif", "onvif", RedactedPassword)))
	if err == nil || !strings.Contains(err.Error(), "required again when onvif_url changes") {
		t.Fatalf("repointing onvif_url with the placeholder: %v; want it to say the password is required again", err)
	}
	// With the password sent again, the change is fine; the same target with
	// the placeholder keeps what is stored.
	h.must(root, "PUT", "/devices/sec1", dev("rtsp://admin:new-src-pw@10.0.0.10/s1", ptz("http://10.0.0.10/onvif", "onvif", "new-ptz-pw")))
	h.must(root, "PUT", "/devices/sec1", dev("rtsp://admin:********@10.0.0.10/s2", ptz("http://10.0.0.10/onvif", "onvif", RedactedPassword)))
	if d, _ := h.s.Device("sec1"); d.Source != "rtsp://admin:new-src-pw@10.0.0.10/s2" || d.PTZ.Password != "new-ptz-pw" {
		t.Fatalf("Device = %+v; want the new passwords kept for the same hosts", d)
	}
}
