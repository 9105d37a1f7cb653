package ptz

import (
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// XML namespaces of the ONVIF services we speak.
const (
	nsSOAP    = "http://www.w3.org/2003/05/soap-envelope"
	nsDevice  = "http://www.onvif.org/ver10/device/wsdl"
	nsMedia10 = "http://www.onvif.org/ver10/media/wsdl"
	nsMedia20 = "http://www.onvif.org/ver20/media/wsdl"
	nsPTZ     = "http://www.onvif.org/ver20/ptz/wsdl"
	nsSchema  = "http://www.onvif.org/ver10/schema"
	nsWSSE    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU     = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

	wsPasswordDigest = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	wsBase64Binary   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// Outgoing messages. encoding/xml cannot choose prefixes, so element names
// carry literal prefixes declared once on the envelope.

type envelopeOut struct {
	XMLName xml.Name   `xml:"s:Envelope"`
	NsS     string     `xml:"xmlns:s,attr"`
	NsTds   string     `xml:"xmlns:tds,attr"`
	NsTrt   string     `xml:"xmlns:trt,attr"`
	NsTr2   string     `xml:"xmlns:tr2,attr"`
	NsTptz  string     `xml:"xmlns:tptz,attr"`
	NsTt    string     `xml:"xmlns:tt,attr"`
	Header  *headerOut `xml:"s:Header"`
	Body    struct {
		Content any
	} `xml:"s:Body"`
}

func newEnvelope(header *headerOut, content any) *envelopeOut {
	env := &envelopeOut{
		NsS: nsSOAP, NsTds: nsDevice, NsTrt: nsMedia10, NsTr2: nsMedia20, NsTptz: nsPTZ, NsTt: nsSchema,
		Header: header,
	}
	env.Body.Content = content
	return env
}

type headerOut struct {
	Security securityOut `xml:"wsse:Security"`
}

type securityOut struct {
	NsWSSE         string           `xml:"xmlns:wsse,attr"`
	NsWSU          string           `xml:"xmlns:wsu,attr"`
	MustUnderstand string           `xml:"s:mustUnderstand,attr"`
	Token          usernameTokenOut `xml:"wsse:UsernameToken"`
}

type usernameTokenOut struct {
	Username string      `xml:"wsse:Username"`
	Password typedString `xml:"wsse:Password"`
	Nonce    typedString `xml:"wsse:Nonce"`
	Created  string      `xml:"wsu:Created"`
}

type typedString struct {
	Type  string `xml:"Type,attr,omitempty"`
	Enc   string `xml:"EncodingType,attr,omitempty"`
	Value string `xml:",chardata"`
}

type getServicesReq struct {
	XMLName           xml.Name `xml:"tds:GetServices"`
	IncludeCapability bool     `xml:"tds:IncludeCapability"`
}

type getCapabilitiesReq struct {
	XMLName  xml.Name `xml:"tds:GetCapabilities"`
	Category string   `xml:"tds:Category"`
}

type getProfiles10Req struct {
	XMLName xml.Name `xml:"trt:GetProfiles"`
}

type getProfiles20Req struct {
	XMLName xml.Name `xml:"tr2:GetProfiles"`
	Type    string   `xml:"tr2:Type"`
}

type vector2D struct {
	X string `xml:"x,attr"`
	Y string `xml:"y,attr"`
}

type vector1D struct {
	X string `xml:"x,attr"`
}

// ptzVector is ONVIF's PTZSpeed / PTZVector: an absent axis is left alone.
type ptzVector struct {
	PanTilt *vector2D `xml:"tt:PanTilt"`
	Zoom    *vector1D `xml:"tt:Zoom"`
}

func newPTZVector(pan, tilt, zoom *float64) ptzVector {
	var v ptzVector
	if pan != nil || tilt != nil {
		v.PanTilt = &vector2D{X: formatAxis(pan), Y: formatAxis(tilt)}
	}
	if zoom != nil {
		v.Zoom = &vector1D{X: formatAxis(zoom)}
	}
	return v
}

func formatAxis(v *float64) string {
	if v == nil {
		return "0"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

type continuousMoveReq struct {
	XMLName      xml.Name  `xml:"tptz:ContinuousMove"`
	ProfileToken string    `xml:"tptz:ProfileToken"`
	Velocity     ptzVector `xml:"tptz:Velocity"`
}

type absoluteMoveReq struct {
	XMLName      xml.Name  `xml:"tptz:AbsoluteMove"`
	ProfileToken string    `xml:"tptz:ProfileToken"`
	Position     ptzVector `xml:"tptz:Position"`
}

type relativeMoveReq struct {
	XMLName      xml.Name  `xml:"tptz:RelativeMove"`
	ProfileToken string    `xml:"tptz:ProfileToken"`
	Translation  ptzVector `xml:"tptz:Translation"`
}

type stopReq struct {
	XMLName      xml.Name `xml:"tptz:Stop"`
	ProfileToken string   `xml:"tptz:ProfileToken"`
	PanTilt      bool     `xml:"tptz:PanTilt"`
	Zoom         bool     `xml:"tptz:Zoom"`
}

type gotoPresetReq struct {
	XMLName      xml.Name `xml:"tptz:GotoPreset"`
	ProfileToken string   `xml:"tptz:ProfileToken"`
	PresetToken  string   `xml:"tptz:PresetToken"`
}

type getPresetsReq struct {
	XMLName      xml.Name `xml:"tptz:GetPresets"`
	ProfileToken string   `xml:"tptz:ProfileToken"`
}

// ptzRequest builds the PTZ service request for a validated command and
// returns it with its operation name.
func ptzRequest(profile string, cmd Command) (any, string) {
	switch cmd.Op {
	case OpMove:
		return &continuousMoveReq{ProfileToken: profile, Velocity: newPTZVector(cmd.Pan, cmd.Tilt, cmd.Zoom)}, "ContinuousMove"
	case OpAbsolute:
		return &absoluteMoveReq{ProfileToken: profile, Position: newPTZVector(cmd.Pan, cmd.Tilt, cmd.Zoom)}, "AbsoluteMove"
	case OpRelative:
		return &relativeMoveReq{ProfileToken: profile, Translation: newPTZVector(cmd.Pan, cmd.Tilt, cmd.Zoom)}, "RelativeMove"
	case OpGotoPreset:
		return &gotoPresetReq{ProfileToken: profile, PresetToken: cmd.Preset}, "GotoPreset"
	default: // OpStop; Validate has ruled out anything else
		return &stopReq{ProfileToken: profile, PanTilt: true, Zoom: true}, "Stop"
	}
}

// Incoming messages are matched by local name only: cameras disagree on
// prefixes and sometimes on namespaces.

type envelopeIn struct {
	XMLName xml.Name `xml:"Envelope"`
	Body    struct {
		Fault *soapFault `xml:"Fault"`
		Inner []byte     `xml:",innerxml"`
	} `xml:"Body"`
}

// soapFault reads SOAP 1.2 faults and, for older firmware, SOAP 1.1 ones.
type soapFault struct {
	Code struct {
		Value   string `xml:"Value"`
		Subcode struct {
			Value   string `xml:"Value"`
			Subcode struct {
				Value string `xml:"Value"`
			} `xml:"Subcode"`
		} `xml:"Subcode"`
	} `xml:"Code"`
	Reason      []string `xml:"Reason>Text"`
	FaultCode   string   `xml:"faultcode"`
	FaultString string   `xml:"faultstring"`
}

// code is the most specific fault code given.
func (f *soapFault) code() string {
	for _, c := range []string{f.Code.Subcode.Subcode.Value, f.Code.Subcode.Value, f.Code.Value, f.FaultCode} {
		if c != "" {
			return c
		}
	}
	return ""
}

func (f *soapFault) reason() string {
	for _, r := range append(f.Reason, f.FaultString) {
		if r != "" {
			return r
		}
	}
	return "SOAP fault without a reason"
}

type getServicesResp struct {
	XMLName  xml.Name `xml:"GetServicesResponse"`
	Services []struct {
		Namespace string `xml:"Namespace"`
		XAddr     string `xml:"XAddr"`
	} `xml:"Service"`
}

type getCapabilitiesResp struct {
	XMLName xml.Name `xml:"GetCapabilitiesResponse"`
	Media   string   `xml:"Capabilities>Media>XAddr"`
	PTZ     string   `xml:"Capabilities>PTZ>XAddr"`
}

type getProfilesResp struct {
	XMLName  xml.Name `xml:"GetProfilesResponse"`
	Profiles []struct {
		Token string    `xml:"token,attr"`
		PTZ10 *struct{} `xml:"PTZConfiguration"`
		PTZ20 *struct{} `xml:"Configurations>PTZ"`
	} `xml:"Profiles"`
}

type getPresetsResp struct {
	XMLName xml.Name `xml:"GetPresetsResponse"`
	Presets []struct {
		Token    string `xml:"token,attr"`
		Name     string `xml:"Name"`
		Position *struct {
			PanTilt *struct {
				X float64 `xml:"x,attr"`
				Y float64 `xml:"y,attr"`
			} `xml:"PanTilt"`
			Zoom *struct {
				X float64 `xml:"x,attr"`
			} `xml:"Zoom"`
		} `xml:"PTZPosition"`
	} `xml:"Preset"`
}

// presets converts the answer into the API's presets. XML floats may be
// NaN or ±Inf, which JSON cannot carry: such a position is left out (the
// preset stays usable by its token).
func (r *getPresetsResp) presets() []Preset {
	presets := make([]Preset, 0, len(r.Presets))
	for _, p := range r.Presets {
		out := Preset{Token: p.Token, Name: p.Name}
		if pos := p.Position; pos != nil {
			if pt := pos.PanTilt; pt != nil && finite(pt.X) && finite(pt.Y) {
				out.Pan, out.Tilt = &pt.X, &pt.Y
			}
			if z := pos.Zoom; z != nil && finite(z.X) {
				out.Zoom = &z.X
			}
		}
		presets = append(presets, out)
	}
	return presets
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// maxReasonBytes bounds what a camera's words may take in an error: its
// fault text reaches API answers, logs and the audit log.
const maxReasonBytes = 512

// cameraText makes a camera-supplied fault code or reason safe to pass on:
// valid UTF-8, no control characters, at most maxReasonBytes.
func cameraText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxReasonBytes {
		cut := maxReasonBytes - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

type getSnapshotURI10Req struct {
	XMLName      xml.Name `xml:"trt:GetSnapshotUri"`
	ProfileToken string   `xml:"trt:ProfileToken"`
}

type getSnapshotURI20Req struct {
	XMLName      xml.Name `xml:"tr2:GetSnapshotUri"`
	ProfileToken string   `xml:"tr2:ProfileToken"`
}

// getSnapshotURIResp reads both forms: Media (MediaUri>Uri) and Media2
// (Uri).
type getSnapshotURIResp struct {
	XMLName  xml.Name `xml:"GetSnapshotUriResponse"`
	MediaURI string   `xml:"MediaUri>Uri"`
	URI      string   `xml:"Uri"`
}

func (r *getSnapshotURIResp) uri() string {
	if u := strings.TrimSpace(r.MediaURI); u != "" {
		return u
	}
	return strings.TrimSpace(r.URI)
}
