package ptz

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDevice is an ONVIF camera on 127.0.0.1 that parses requests with full
// namespaces, checks the WS-Security digest against its own password and
// records every operation it accepted.
type fakeDevice struct {
	username, password string
	getServicesFault   bool // an ONVIF 1.x device: GetServices is not supported
	media20Only        bool // offers only the Media2 service
	block              bool // never answers until the client gives up
	profiles           string
	presets            string
	snapshotURI        string // GetSnapshotUri's answer (default: this device's /snapshot.jpg)
	snapshotBasic      bool   // ask for Basic instead of Digest on /snapshot.jpg
	snapshots          int    // snapshot GETs answered with the JPEG

	srv     *httptest.Server
	unblock chan struct{} // closed at cleanup so a blocked handler lets the server close

	mu       sync.Mutex
	requests int
	ops      []fakeOp
	nonces   map[string]bool
}

// fakeOp is one accepted operation as the camera understood it.
type fakeOp struct {
	Op, Profile, Preset string
	Pan, Tilt, Zoom     *float64
}

const (
	defaultProfiles = `<trt:Profiles token="main_noptz" fixed="true"><tt:Name>main</tt:Name></trt:Profiles>` +
		`<trt:Profiles token="main_ptz" fixed="true"><tt:Name>ptz</tt:Name><tt:PTZConfiguration token="ptzcfg"/></trt:Profiles>`
	defaultPresets = `<tptz:Preset token="1"><tt:Name>Gate</tt:Name><tt:PTZPosition><tt:PanTilt x="0.25" y="-0.5"/><tt:Zoom x="0.1"/></tt:PTZPosition></tptz:Preset>` +
		`<tptz:Preset token="2"><tt:Name>Parking</tt:Name></tptz:Preset>`
)

func newFakeDevice(t *testing.T, configure func(*fakeDevice)) *fakeDevice {
	t.Helper()
	d := &fakeDevice{username: "admin", password: "s3cret", profiles: defaultProfiles, presets: defaultPresets, nonces: map[string]bool{}}
	if configure != nil {
		configure(d)
	}
	d.unblock = make(chan struct{})
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	t.Cleanup(func() { close(d.unblock) }) // runs before srv.Close
	return d
}

func (d *fakeDevice) camera() Camera {
	return Camera{ID: "cam1", OnvifURL: d.srv.URL + "/onvif/device_service", Username: d.username, Password: d.password}
}

func (d *fakeDevice) requestCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests
}

func (d *fakeDevice) accepted() []fakeOp {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]fakeOp(nil), d.ops...)
}

// acceptedOps lists the operation names accepted, in order.
func (d *fakeDevice) acceptedOps() []string {
	var names []string
	for _, op := range d.accepted() {
		names = append(names, op.Op)
	}
	return names
}

type fakeVector struct {
	PanTilt *struct {
		X float64 `xml:"x,attr"`
		Y float64 `xml:"y,attr"`
	} `xml:"http://www.onvif.org/ver10/schema PanTilt"`
	Zoom *struct {
		X float64 `xml:"x,attr"`
	} `xml:"http://www.onvif.org/ver10/schema Zoom"`
}

type fakePTZReq struct {
	ProfileToken string      `xml:"http://www.onvif.org/ver20/ptz/wsdl ProfileToken"`
	Velocity     *fakeVector `xml:"http://www.onvif.org/ver20/ptz/wsdl Velocity"`
	Position     *fakeVector `xml:"http://www.onvif.org/ver20/ptz/wsdl Position"`
	Translation  *fakeVector `xml:"http://www.onvif.org/ver20/ptz/wsdl Translation"`
	PresetToken  string      `xml:"http://www.onvif.org/ver20/ptz/wsdl PresetToken"`
	StopPanTilt  string      `xml:"http://www.onvif.org/ver20/ptz/wsdl PanTilt"`
	StopZoom     string      `xml:"http://www.onvif.org/ver20/ptz/wsdl Zoom"`
}

type fakeEnvelope struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  struct {
		Security *struct {
			MustUnderstand string `xml:"http://www.w3.org/2003/05/soap-envelope mustUnderstand,attr"`
			Username       string `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd UsernameToken>Username"`
			Password       struct {
				Type  string `xml:"Type,attr"`
				Value string `xml:",chardata"`
			} `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd UsernameToken>Password"`
			Nonce   string `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd UsernameToken>Nonce"`
			Created string `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd UsernameToken>Created"`
		} `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd Security"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body struct {
		GetServices     *struct{}   `xml:"http://www.onvif.org/ver10/device/wsdl GetServices"`
		GetCapabilities *struct{}   `xml:"http://www.onvif.org/ver10/device/wsdl GetCapabilities"`
		GetProfiles10   *struct{}   `xml:"http://www.onvif.org/ver10/media/wsdl GetProfiles"`
		GetProfiles20   *struct{}   `xml:"http://www.onvif.org/ver20/media/wsdl GetProfiles"`
		ContinuousMove  *fakePTZReq `xml:"http://www.onvif.org/ver20/ptz/wsdl ContinuousMove"`
		AbsoluteMove    *fakePTZReq `xml:"http://www.onvif.org/ver20/ptz/wsdl AbsoluteMove"`
		RelativeMove    *fakePTZReq `xml:"http://www.onvif.org/ver20/ptz/wsdl RelativeMove"`
		Stop            *fakePTZReq `xml:"http://www.onvif.org/ver20/ptz/wsdl Stop"`
		GotoPreset      *fakePTZReq `xml:"http://www.onvif.org/ver20/ptz/wsdl GotoPreset"`
		GetPresets      *fakePTZReq `xml:"http://www.onvif.org/ver20/ptz/wsdl GetPresets"`
		Snapshot10      *struct {
			ProfileToken string `xml:"http://www.onvif.org/ver10/media/wsdl ProfileToken"`
		} `xml:"http://www.onvif.org/ver10/media/wsdl GetSnapshotUri"`
		Snapshot20 *struct {
			ProfileToken string `xml:"http://www.onvif.org/ver20/media/wsdl ProfileToken"`
		} `xml:"http://www.onvif.org/ver20/media/wsdl GetSnapshotUri"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

func (d *fakeDevice) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.requests++
	d.mu.Unlock()
	if r.Method == http.MethodGet && r.URL.Path == "/snapshot.jpg" {
		d.serveSnapshot(w, r)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	if d.block {
		select {
		case <-r.Context().Done():
		case <-d.unblock:
		}
		return
	}
	var env fakeEnvelope
	if err := xml.Unmarshal(raw, &env); err != nil {
		writeFault(w, "s:Sender", "ter:WellFormed", "not a SOAP 1.2 envelope: "+err.Error())
		return
	}
	if reason := d.authenticate(&env); reason != "" {
		writeFault(w, "s:Sender", "ter:NotAuthorized", reason)
		return
	}
	op, ns, body, rec := d.dispatch(r.URL.Path, &env)
	if op == "" {
		writeFault(w, "s:Sender", "ter:ActionNotSupported", "unknown operation at "+r.URL.Path)
		return
	}
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/soap+xml") || !strings.Contains(ct, `action="`+ns+"/"+op+`"`) {
		writeFault(w, "s:Sender", "ter:WellFormed", "content type "+ct)
		return
	}
	if rec != nil {
		rec.Op = op
		d.mu.Lock()
		d.ops = append(d.ops, *rec)
		d.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" `+
		`xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tr2="http://www.onvif.org/ver20/media/wsdl" `+
		`xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><SOAP-ENV:Body>%s</SOAP-ENV:Body></SOAP-ENV:Envelope>`, body)
}

// authenticate returns why the request is refused, or "".
func (d *fakeDevice) authenticate(env *fakeEnvelope) string {
	sec := env.Header.Security
	if sec == nil {
		return "no WS-Security header"
	}
	if sec.Username != d.username || sec.Password.Type != wsPasswordDigest || sec.MustUnderstand == "" {
		return "bad UsernameToken"
	}
	nonce, err := base64.StdEncoding.DecodeString(sec.Nonce)
	if err != nil || len(nonce) < 8 {
		return "bad nonce"
	}
	created, err := time.Parse(time.RFC3339Nano, sec.Created)
	if err != nil || !strings.HasSuffix(sec.Created, "Z") || time.Since(created).Abs() > time.Minute {
		return "bad Created " + sec.Created
	}
	sum := sha1.Sum([]byte(string(nonce) + sec.Created + d.password))
	if sec.Password.Value != base64.StdEncoding.EncodeToString(sum[:]) {
		return "Sender not Authorized"
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nonces[sec.Nonce] {
		return "nonce replayed"
	}
	d.nonces[sec.Nonce] = true
	return ""
}

// dispatch answers the operation found in the body at path. rec is what to
// record for PTZ operations.
func (d *fakeDevice) dispatch(path string, env *fakeEnvelope) (op, ns, body string, rec *fakeOp) {
	const (
		devNS = "http://www.onvif.org/ver10/device/wsdl"
		ptzNS = "http://www.onvif.org/ver20/ptz/wsdl"
	)
	b := env.Body
	base := d.srv.URL
	switch {
	case path == "/onvif/device_service" && b.GetServices != nil && !d.getServicesFault:
		media := `<tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace><tds:XAddr>` + base + `/onvif/media</tds:XAddr></tds:Service>`
		if d.media20Only {
			media = `<tds:Service><tds:Namespace>http://www.onvif.org/ver20/media/wsdl</tds:Namespace><tds:XAddr>/onvif/media2</tds:XAddr></tds:Service>`
		}
		return "GetServices", devNS, `<tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>` +
			base + `/onvif/device_service</tds:XAddr></tds:Service>` + media +
			`<tds:Service><tds:Namespace>http://www.onvif.org/ver20/ptz/wsdl</tds:Namespace><tds:XAddr>` + base + `/onvif/ptz</tds:XAddr></tds:Service></tds:GetServicesResponse>`, nil
	case path == "/onvif/device_service" && b.GetCapabilities != nil:
		return "GetCapabilities", devNS, `<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>` + base +
			`/onvif/media</tt:XAddr></tt:Media><tt:PTZ><tt:XAddr>` + base + `/onvif/ptz</tt:XAddr></tt:PTZ></tds:Capabilities></tds:GetCapabilitiesResponse>`, nil
	case path == "/onvif/media" && b.GetProfiles10 != nil:
		return "GetProfiles", "http://www.onvif.org/ver10/media/wsdl", `<trt:GetProfilesResponse>` + d.profiles + `</trt:GetProfilesResponse>`, nil
	case path == "/onvif/media2" && b.GetProfiles20 != nil:
		return "GetProfiles", "http://www.onvif.org/ver20/media/wsdl", `<tr2:GetProfilesResponse><tr2:Profiles token="m2" fixed="true"><tr2:Name>m2</tr2:Name>` +
			`<tr2:Configurations><tr2:PTZ token="p"/></tr2:Configurations></tr2:Profiles></tr2:GetProfilesResponse>`, nil
	case path == "/onvif/media" && b.Snapshot10 != nil && b.Snapshot10.ProfileToken != "":
		return "GetSnapshotUri", "http://www.onvif.org/ver10/media/wsdl", `<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>` + d.snapshotAt() +
			`</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect></trt:MediaUri></trt:GetSnapshotUriResponse>`, &fakeOp{Profile: b.Snapshot10.ProfileToken}
	case path == "/onvif/media2" && b.Snapshot20 != nil && b.Snapshot20.ProfileToken != "":
		return "GetSnapshotUri", "http://www.onvif.org/ver20/media/wsdl", `<tr2:GetSnapshotUriResponse><tr2:Uri>` + d.snapshotAt() +
			`</tr2:Uri></tr2:GetSnapshotUriResponse>`, &fakeOp{Profile: b.Snapshot20.ProfileToken}
	case path != "/onvif/ptz":
		return "", "", "", nil
	case b.ContinuousMove != nil:
		return "ContinuousMove", ptzNS, `<tptz:ContinuousMoveResponse/>`, vectorOp(b.ContinuousMove, b.ContinuousMove.Velocity)
	case b.AbsoluteMove != nil:
		return "AbsoluteMove", ptzNS, `<tptz:AbsoluteMoveResponse/>`, vectorOp(b.AbsoluteMove, b.AbsoluteMove.Position)
	case b.RelativeMove != nil:
		return "RelativeMove", ptzNS, `<tptz:RelativeMoveResponse/>`, vectorOp(b.RelativeMove, b.RelativeMove.Translation)
	case b.Stop != nil && b.Stop.StopPanTilt == "true" && b.Stop.StopZoom == "true":
		return "Stop", ptzNS, `<tptz:StopResponse/>`, &fakeOp{Profile: b.Stop.ProfileToken}
	case b.GotoPreset != nil:
		return "GotoPreset", ptzNS, `<tptz:GotoPresetResponse/>`, &fakeOp{Profile: b.GotoPreset.ProfileToken, Preset: b.GotoPreset.PresetToken}
	case b.GetPresets != nil:
		return "GetPresets", ptzNS, `<tptz:GetPresetsResponse>` + d.presets + `</tptz:GetPresetsResponse>`, &fakeOp{Profile: b.GetPresets.ProfileToken}
	}
	return "", "", "", nil
}

func vectorOp(req *fakePTZReq, v *fakeVector) *fakeOp {
	op := &fakeOp{Profile: req.ProfileToken}
	if v == nil {
		return op
	}
	if pt := v.PanTilt; pt != nil {
		op.Pan, op.Tilt = &pt.X, &pt.Y
	}
	if z := v.Zoom; z != nil {
		op.Zoom = &z.X
	}
	return op
}

func writeFault(w http.ResponseWriter, code, subcode, reason string) {
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(reason))
	reason = esc.String()
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error">`+
		`<env:Body><env:Fault><env:Code><env:Value>%s</env:Value><env:Subcode><env:Value>%s</env:Value></env:Subcode></env:Code>`+
		`<env:Reason><env:Text xml:lang="en">%s</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`, code, subcode, reason)
}
