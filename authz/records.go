package authz

import (
	"encoding/json"
	"fmt"
	"time"
)

// Record kinds, as they appear in /api/v1/{kind} and in the store.
const (
	kindOrgs     = "orgs"
	kindSites    = "sites"
	kindDevices  = "devices"
	kindSubjects = "subjects"
	kindGroups   = "groups"
	kindRoles    = "roles"
	kindGrants   = "grants"
	kindShares   = "shares"
	kindRequests = "access-requests"
	kindAdmins   = "admins"
)

// Device kinds.
const (
	DeviceCamera      = "camera"
	DeviceVoiceModule = "voice_module"
	DeviceMotionCam   = "motion_cam"
)

// Subject kinds.
const (
	SubjectUser       = "user"
	SubjectInstaller  = "installer"
	SubjectCompany    = "company"
	SubjectEmployee   = "employee"
	SubjectIntegrator = "integrator"
)

// Grant sources (read-only on the API): who created the grant.
const (
	SourceManual  = "manual"
	SourceAuto    = "auto"    // temporary access on camera add
	SourceRequest = "request" // an approved access request
	SourceBulk    = "bulk"
)

// Duration is a time.Duration written as a Go duration string ("8h", "30m").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string like \"30m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// Org is a client account. Integrators of another org reach its cameras only
// while ProviderAllowedUntil is in the future (rule 9).
type Org struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// ProviderRestriction is always true: false is refused (seed 003, the
	// allowance is never permanent; see restriction_exempt on a subject).
	ProviderRestriction  *bool      `json:"provider_restriction,omitempty"`
	RestrictionTZ        string     `json:"restriction_tz,omitempty"`
	ProviderAllowedUntil *time.Time `json:"provider_allowed_until,omitempty"`
	CreatedBy            string     `json:"created_by,omitempty"`
}

// Site is a node of the site tree. Armed is state, changed by arm/disarm.
type Site struct {
	ID              string   `json:"id"`
	Org             string   `json:"org,omitempty"`
	Parent          string   `json:"parent,omitempty"`
	Name            string   `json:"name,omitempty"`
	PrivacyManagers []string `json:"privacy_managers,omitempty"`
	AlarmWindow     Duration `json:"alarm_window,omitempty"`
	PhotosOnDemand  bool     `json:"photos_on_demand"`
	PhotoScenarios  bool     `json:"photo_scenarios"`
	ScenarioRule    string   `json:"scenario_rule,omitempty"`
	Armed           bool     `json:"armed"`
	CreatedBy       string   `json:"created_by,omitempty"`
}

// PTZConfig is how the gateway reaches a camera's ONVIF PTZ service.
type PTZConfig struct {
	OnvifURL string `json:"onvif_url"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// Device is a camera, voice module or motion camera. AlarmUntil is state: the
// end of the alarm window opened by the last alarm event.
type Device struct {
	ID     string `json:"id"`
	Site   string `json:"site"`
	Kind   string `json:"kind"`
	Name   string `json:"name,omitempty"`
	Source string `json:"source,omitempty"`
	// Transport of the camera's RTSP media: "auto" (or ""; UDP, then
	// TCP when no UDP packet arrives), "tcp" or "udp".
	Transport string `json:"transport,omitempty"`
	// UDPReadBuffer overrides rtsp.upstream_udp_read_buffer for this
	// camera (bytes; 0 = the node's setting).
	UDPReadBuffer int        `json:"udp_read_buffer,omitempty"`
	Record        bool       `json:"record"`
	PTZ           *PTZConfig `json:"ptz,omitempty"`
	AlarmUntil    *time.Time `json:"alarm_until,omitempty"`
	CreatedBy     string     `json:"created_by,omitempty"`
}

// Subject is a principal a viewer token names.
type Subject struct {
	ID                string   `json:"id"`
	Kind              string   `json:"kind"`
	Name              string   `json:"name,omitempty"`
	Email             string   `json:"email,omitempty"`
	Org               string   `json:"org,omitempty"`
	Sites             []string `json:"sites,omitempty"`
	Company           string   `json:"company,omitempty"`
	Rights            []string `json:"rights,omitempty"`
	RestrictionExempt bool     `json:"restriction_exempt,omitempty"`
	CreatedBy         string   `json:"created_by,omitempty"`
}

// Group is a set of subjects; a grant to a group applies to every member.
type Group struct {
	ID        string   `json:"id"`
	Name      string   `json:"name,omitempty"`
	Members   []string `json:"members"`
	CreatedBy string   `json:"created_by,omitempty"`
}

// Role is a named permission template: Actions for site roles, Sections and
// IndividualAccess for admin roles.
type Role struct {
	ID               string   `json:"id"`
	Actions          []string `json:"actions"`
	Sections         []string `json:"sections,omitempty"`
	IndividualAccess bool     `json:"individual_access"`
	Builtin          bool     `json:"builtin,omitempty"`
	CreatedBy        string   `json:"created_by,omitempty"`
}

// Window is one weekly schedule window: on Days, from From to To (HH:MM, To
// may be "24:00"; To before From crosses midnight) in TZ (IANA or ±HH:MM).
type Window struct {
	Days []string `json:"days"`
	From string   `json:"from"`
	To   string   `json:"to"`
	TZ   string   `json:"tz,omitempty"`
}

// Grant gives a subject (or a group) actions, or a role, on a device or a site.
type Grant struct {
	ID            string     `json:"id"`
	Subject       string     `json:"subject"`
	Device        string     `json:"device,omitempty"`
	Site          string     `json:"site,omitempty"`
	Actions       []string   `json:"actions,omitempty"`
	Role          string     `json:"role,omitempty"`
	Condition     string     `json:"condition,omitempty"`
	Schedule      []Window   `json:"schedule,omitempty"`
	NotBefore     *time.Time `json:"not_before,omitempty"`
	NotAfter      *time.Time `json:"not_after,omitempty"`
	FootageWithin Duration   `json:"footage_within,omitempty"`
	// ExceptDevices narrows a site grant: it does not apply to these
	// devices (a bulk change sets it, seed 000: "any unselected permissions
	// will be revoked even if they were previously granted").
	ExceptDevices []string `json:"except_devices,omitempty"`
	Source        string   `json:"source,omitempty"`
	CreatedBy     string   `json:"created_by,omitempty"`
}

// Share states.
const (
	SharePending  = "pending"
	ShareAccepted = "accepted"
	ShareRejected = "rejected"
)

// Share offers a device to a registered user by email; it counts once accepted.
type Share struct {
	ID             string     `json:"id"`
	Device         string     `json:"device"`
	Owner          string     `json:"owner"`
	RecipientEmail string     `json:"recipient_email"`
	Actions        []string   `json:"actions"`
	Schedule       []Window   `json:"schedule,omitempty"`
	ActiveUntil    *time.Time `json:"active_until,omitempty"`
	State          string     `json:"state"`
	Recipient      string     `json:"recipient"`
	CreatedBy      string     `json:"created_by,omitempty"`
}

// Access request states.
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestDenied   = "denied"
)

// AccessRequest is a PRO user's request for temporary access.
type AccessRequest struct {
	ID        string   `json:"id"`
	Requester string   `json:"requester"`
	Devices   []string `json:"devices"`
	Actions   []string `json:"actions"`
	Duration  Duration `json:"duration"`
	State     string   `json:"state"`
	DecidedBy string   `json:"decided_by,omitempty"`
	Grants    []string `json:"grants,omitempty"`
	CreatedBy string   `json:"created_by,omitempty"`
}

// Admin is an API administrator. Sections and Individual are the snapshot
// taken when the roles were assigned (seed 001: a role edit reaches an admin
// only when re-assigned). KeyHash is never returned by the API.
type Admin struct {
	ID               string         `json:"id"`
	Name             string         `json:"name,omitempty"`
	Roles            []string       `json:"roles"`
	IndividualAccess IndividualMode `json:"individual_access"`
	ReportsTo        string         `json:"reports_to,omitempty"`
	Sections         []string       `json:"sections"`
	Individual       bool           `json:"individual"`
	Key              string         `json:"key,omitempty"`
	KeyHash          string         `json:"key_hash,omitempty"`
	CreatedBy        string         `json:"created_by,omitempty"`
}

// IndividualMode is "auto" (from the roles) or a manual true/false override.
type IndividualMode string

// Individual access modes.
const (
	IndividualAuto IndividualMode = "auto"
	IndividualOn   IndividualMode = "true"
	IndividualOff  IndividualMode = "false"
)

// MarshalJSON writes auto as a string and overrides as booleans.
func (m IndividualMode) MarshalJSON() ([]byte, error) {
	switch m {
	case IndividualOn:
		return []byte("true"), nil
	case IndividualOff:
		return []byte("false"), nil
	}
	return []byte(`"auto"`), nil
}

// UnmarshalJSON accepts "auto", true or false.
func (m *IndividualMode) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"auto"`, "null":
		*m = IndividualAuto
	case "true":
		*m = IndividualOn
	case "false":
		*m = IndividualOff
	default:
		return fmt.Errorf(`want "auto", true or false`)
	}
	return nil
}
