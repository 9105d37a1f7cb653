package ptz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// A camera's SOAP answers are foreign input: any device at the configured
// ONVIF URL (or one that answers in its place) writes them. FuzzDecodeResponse
// feeds arbitrary answers to the decoder with every response type the
// controller reads. The properties: no panic; an error is a *CameraError
// (ErrCamera) whose reason is short, valid UTF-8 and says something; decoded
// presets encode as the API's JSON.
func FuzzDecodeResponse(f *testing.F) {
	envelope := func(body string) string {
		return `<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" ` +
			`xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tr2="http://www.onvif.org/ver20/media/wsdl" ` +
			`xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><SOAP-ENV:Body>` + body + `</SOAP-ENV:Body></SOAP-ENV:Envelope>`
	}
	fault12 := func(code, subcode, reason string) string {
		return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error">`+
			`<env:Body><env:Fault><env:Code><env:Value>%s</env:Value><env:Subcode><env:Value>%s</env:Value></env:Subcode></env:Code>`+
			`<env:Reason><env:Text xml:lang="en">%s</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`, code, subcode, reason)
	}
	base := "http://192.0.2.1"
	for _, s := range []struct {
		status int
		body   string
	}{
		// The fake device's canned answers (fakedevice_test.go).
		{200, envelope(`<tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>` + base + `/onvif/device_service</tds:XAddr></tds:Service>` +
			`<tds:Service><tds:Namespace>http://www.onvif.org/ver20/ptz/wsdl</tds:Namespace><tds:XAddr>` + base + `/onvif/ptz</tds:XAddr></tds:Service></tds:GetServicesResponse>`)},
		{200, envelope(`<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>` + base + `/onvif/media</tt:XAddr></tt:Media><tt:PTZ><tt:XAddr>` + base + `/onvif/ptz</tt:XAddr></tt:PTZ></tds:Capabilities></tds:GetCapabilitiesResponse>`)},
		{200, envelope(`<trt:GetProfilesResponse>` + defaultProfiles + `</trt:GetProfilesResponse>`)},
		{200, envelope(`<tr2:GetProfilesResponse><tr2:Profiles token="m2" fixed="true"><tr2:Name>m2</tr2:Name><tr2:Configurations><tr2:PTZ token="p"/></tr2:Configurations></tr2:Profiles></tr2:GetProfilesResponse>`)},
		{200, envelope(`<tptz:GetPresetsResponse>` + defaultPresets + `</tptz:GetPresetsResponse>`)},
		{200, envelope(`<tptz:GetPresetsResponse><tptz:Preset token="x"><tt:PTZPosition><tt:PanTilt x="1e3" y="-Inf"/><tt:Zoom x="NaN"/></tt:PTZPosition></tptz:Preset></tptz:GetPresetsResponse>`)},
		{200, envelope(`<tptz:ContinuousMoveResponse/>`)},
		{200, envelope(`<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>` + base + `/snapshot.jpg</tt:Uri></trt:MediaUri></trt:GetSnapshotUriResponse>`)},
		{200, envelope(`<tr2:GetSnapshotUriResponse><tr2:Uri>/cgi-bin/snap?ch=1&amp;x=%00</tr2:Uri></tr2:GetSnapshotUriResponse>`)},
		{200, envelope(`<tptz:GotoPresetResponse></tptz:GotoPresetResponse>`)},
		{400, fault12("s:Sender", "ter:NotAuthorized", "Sender not Authorized")},
		{400, fault12("s:Sender", "ter:ActionNotSupported", "unknown operation at /onvif/ptz")},
		{500, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>Bad preset token</faultstring></s:Fault></s:Body></s:Envelope>`},
		{401, `<html><body>401 Unauthorized</body></html>`},
		{200, `not xml at all`},
		{200, ``},
	} {
		f.Add(uint16(s.status), []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status uint16, raw []byte) {
		for _, resp := range []any{nil, &getServicesResp{}, &getCapabilitiesResp{}, &getProfilesResp{}, &getPresetsResp{}, &getSnapshotURIResp{}} {
			err := decodeResponse("Op", int(status), raw, resp)
			if err != nil {
				var ce *CameraError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCamera) {
					t.Fatalf("%T %v is not a camera error", err, err)
				}
				if ce.Reason == "" || len(ce.Reason) > maxReasonBytes || !utf8.ValidString(ce.Reason) ||
					len(ce.Code) > maxReasonBytes || !utf8.ValidString(ce.Code) {
					t.Fatalf("reason %q (%d bytes), code %q", ce.Reason, len(ce.Reason), ce.Code)
				}
				continue
			}
			if r, ok := resp.(*getSnapshotURIResp); ok {
				// Whatever the camera names, what is fetched is http(s) on a
				// host, without credentials of the camera's choosing.
				if u, err := snapshotURL(base+"/onvif/media", r.uri()); err == nil {
					if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") || strings.Contains(strings.SplitN(u[8:], "/", 2)[0], "@") {
						t.Fatalf("snapshot URL %q", u)
					}
				} else if !errors.Is(err, ErrCamera) {
					t.Fatalf("snapshot URL error %T %v", err, err)
				}
			}
			if p, ok := resp.(*getPresetsResp); ok {
				if _, err := json.Marshal(map[string]any{"presets": p.presets()}); err != nil {
					t.Fatalf("presets do not encode: %v", err)
				}
			}
		}
	})
}

// TestPresetsWithNonFinitePositions: XML floats may be NaN or Inf, which
// the API's JSON cannot carry; such an axis is left out instead of the
// whole presets answer failing to encode (a 500).
func TestPresetsWithNonFinitePositions(t *testing.T) {
	dev := newFakeDevice(t, func(d *fakeDevice) {
		d.presets = `<tptz:Preset token="1"><tt:Name>Gate</tt:Name><tt:PTZPosition><tt:PanTilt x="NaN" y="0.5"/><tt:Zoom x="0.1"/></tt:PTZPosition></tptz:Preset>` +
			`<tptz:Preset token="2"><tt:Name>Sky</tt:Name><tt:PTZPosition><tt:PanTilt x="0.2" y="0.3"/><tt:Zoom x="+Inf"/></tt:PTZPosition></tptz:Preset>`
	})
	c := newTestController(t, newTestClock(), nil)
	got, err := c.Presets(context.Background(), dev.camera(), alice)
	if err != nil {
		t.Fatalf("Presets: %v", err)
	}
	b, err := json.Marshal(map[string]any{"presets": got})
	if err != nil {
		t.Fatalf("the presets answer does not encode: %v", err)
	}
	if want := `{"presets":[{"token":"1","name":"Gate","zoom":0.1},{"token":"2","name":"Sky","pan":0.2,"tilt":0.3}]}`; string(b) != want {
		t.Fatalf("presets %s, want %s", b, want)
	}
}

// TestCameraFaultTextIsBounded: a camera's fault reason reaches the API
// answer, the logs and the audit log; half a megabyte of it, with control
// characters, must arrive short and clean.
func TestCameraFaultTextIsBounded(t *testing.T) {
	huge := strings.Repeat("ab\u0085[31m\t\ncd ", 50000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault><env:Code><env:Value>%s</env:Value></env:Code>`+
			`<env:Reason><env:Text>%s</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`, strings.Repeat("c", 5000), huge)
	}))
	defer srv.Close()
	c := newTestController(t, newTestClock(), nil)
	_, err := c.Do(context.Background(), Camera{ID: "cam1", OnvifURL: srv.URL + "/onvif/device_service"}, alice, Command{Op: OpStop})
	var ce *CameraError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a camera error", err)
	}
	_, body := HTTPError(err)
	for what, s := range map[string]string{"reason": ce.Reason, "code": ce.Code, "API error": body.Error} {
		if len(s) > maxReasonBytes+100 || !utf8.ValidString(s) || strings.ContainsAny(s, "\u0085\t\n") {
			t.Errorf("%s: %d bytes, valid UTF-8 %v: %.80q…", what, len(s), utf8.ValidString(s), s)
		}
	}
}

// A camera's WWW-Authenticate header is foreign input too: parsing never
// panics or loops, and the Authorization header built from any challenge
// is one header line (no CR, LF or other control characters).
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{
		`Digest realm="IP Camera", qop="auth,auth-int", nonce="abc", opaque="o\"q"`,
		`Digest realm="r", nonce="n", algorithm=SHA-256, qop=auth`,
		`Basic realm="cam"`,
		`Digest nonce=,,,=, realm="unterminated`,
		`digest REALM=x NONCE=y`,
		``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a := authorization([]string{h}, "admin", "pw", "GET", "/snapshot.jpg?x=1")
		if strings.ContainsFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("control character in %q", a)
		}
	})
}
