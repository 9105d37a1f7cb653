package authz

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// validID accepts ^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9_-])?$ without
// "..": ids end up in URLs and file paths elsewhere (DATA/archive/{camera}),
// so an id is one path segment that no file system or URL resolver reads as
// another ("." and ".." segments, '/', '\', '%' escapes, control
// characters, and a trailing '.', which Windows drops from file names).
// ValidID reports whether s is a valid id of any kind (devices, sites, …):
// 1–64 of A-Z a-z 0-9 . _ -, starting with a letter or digit, no "..",
// not ending in ".". Configuration validation uses the same rule.
func ValidID(s string) bool { return validID(s) }

// MaxUDPReadBuffer bounds a camera's udp_read_buffer (64 MiB): more is a
// typo, not a buffer.
const MaxUDPReadBuffer = 64 << 20

// CheckTransport returns what is wrong with a camera's transport and
// udp_read_buffer ("" when nothing); configuration validation uses it too.
func CheckTransport(transport string, udpReadBuffer int) (field, problem string) {
	switch transport {
	case "", "auto", "tcp", "udp":
	default:
		return "transport", fmt.Sprintf("%q: want auto, tcp or udp", transport)
	}
	if udpReadBuffer < 0 || udpReadBuffer > MaxUDPReadBuffer {
		return "udp_read_buffer", fmt.Sprintf("%d: want 0 to %d bytes (0: the default)", udpReadBuffer, MaxUDPReadBuffer)
	}
	return "", ""
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 || strings.Contains(s, "..") || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

func checkRef(field, id string, exists bool, what string) error {
	if id == "" {
		return fieldErr(field, "is required")
	}
	if !exists {
		return fieldErr(field, fmt.Sprintf("no %s %q", what, id))
	}
	return nil
}

func timeZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// compileGrant checks a grant's own fields and parses them.
func compileGrant(g *Grant) (*grantC, error) {
	c := &grantC{g: g, nb: timeZero(g.NotBefore), na: timeZero(g.NotAfter), footage: time.Duration(g.FootageWithin)}
	var err error
	if (g.Device == "") == (g.Site == "") {
		return nil, fieldErr("device", "exactly one of device or site is required")
	}
	if (len(g.Actions) == 0) == (g.Role == "") {
		return nil, fieldErr("actions", "exactly one of actions or role is required")
	}
	if c.actions, err = ParseActions(g.Actions); err != nil {
		return nil, fieldErr("actions", err.Error())
	}
	var ok bool
	if c.cond, ok = parseCondition(g.Condition); !ok {
		return nil, fieldErr("condition", "want always, armed or after_alarm")
	}
	if c.sched, err = compileSchedule("schedule", g.Schedule); err != nil {
		return nil, err
	}
	if !c.nb.IsZero() && !c.na.IsZero() && !c.na.After(c.nb) {
		return nil, fieldErr("not_after", "must be after not_before")
	}
	if c.footage < 0 {
		return nil, fieldErr("footage_within", "must be positive")
	}
	if len(g.ExceptDevices) > 0 {
		if g.Site == "" {
			return nil, fieldErr("except_devices", "only a site grant can except devices")
		}
		c.except = set{}
		for _, d := range g.ExceptDevices {
			c.except[d] = struct{}{}
		}
	}
	return c, nil
}

// compileShare checks a share's own fields and parses them.
func compileShare(s *Share) (*shareC, error) {
	c := &shareC{s: s}
	var err error
	if c.actions, err = ParseActions(s.Actions); err != nil {
		return nil, fieldErr("actions", err.Error())
	}
	if c.actions == 0 {
		return nil, fieldErr("actions", "at least one of live, archive, notices, download is required")
	}
	if c.actions&^actionsShare != 0 {
		return nil, fieldErr("actions", "a share gives only live, archive, notices or download")
	}
	if c.sched, err = compileSchedule("schedule", s.Schedule); err != nil {
		return nil, err
	}
	return c, nil
}

// shareWithinOwner refuses a share that asks for an action its owner may not
// do now (rule 8: a share is worth at most what its owner may do, so such a
// level could never work and would only mislead the recipient). The owner's
// own rules decide — conditions, schedules and validity at now — whoever
// writes the share. The caller holds writeMu.
func (m *model) shareWithinOwner(c *shareC, now time.Time) error {
	own := m.ownRights(c.s.Owner, c.s.Device, now)
	for i := range numActions {
		a := Action(1) << i
		if c.actions&a == 0 {
			continue
		}
		if ok, why, _ := own.decide(a, now.UnixNano(), -1); !ok {
			return fieldErr("actions", fmt.Sprintf("%s may not %s on %s now (%s): a share gives at most what its owner may do",
				c.s.Owner, a, c.s.Device, why))
		}
	}
	return nil
}

func (m *model) validateOrg(o *Org) error {
	if o.ProviderRestriction != nil && !*o.ProviderRestriction {
		// Seed 003: the allowance "is not a permanent solution … reverted
		// within 24 hours"; only an exclusion list exempts an integrator.
		return fieldErr("provider_restriction", "the integrator restriction cannot be switched off: it returns every midnight (seed 003); "+
			"lift it until the next midnight with POST /api/v1/orgs/{id}/allow-provider, or exempt one integrator with restriction_exempt on its subject")
	}
	if o.ProviderRestriction == nil {
		t := true
		o.ProviderRestriction = &t
	}
	if o.RestrictionTZ == "" {
		o.RestrictionTZ = "-05:00"
	}
	if _, err := parseTZ(o.RestrictionTZ); err != nil {
		return fieldErr("restriction_tz", err.Error())
	}
	return nil
}

func (m *model) validateSite(s *Site) error {
	if s.Org != "" && m.orgs[s.Org] == nil {
		return fieldErr("org", fmt.Sprintf("no org %q", s.Org))
	}
	if s.Parent != "" {
		if m.sites[s.Parent] == nil {
			return fieldErr("parent", fmt.Sprintf("no site %q", s.Parent))
		}
		var buf [8]string
		for _, a := range m.siteChain(s.Parent, buf[:0]) {
			if a == s.ID {
				return fieldErr("parent", "would make a cycle in the site tree")
			}
		}
		if po := m.siteOrg(s.Parent); s.Org != "" && po != "" && po != s.Org {
			return fieldErr("org", fmt.Sprintf("a sub-site belongs to its parent's org %q", po))
		}
	}
	for i, pm := range s.PrivacyManagers {
		sub := m.subjects[pm]
		if sub == nil {
			return fieldErr(fmt.Sprintf("privacy_managers[%d]", i), fmt.Sprintf("no subject %q", pm))
		}
		// Rule 4, seed 000: "PRO users cannot configure privacy settings".
		if sub.Kind != SubjectUser {
			return fieldErr(fmt.Sprintf("privacy_managers[%d]", i), fmt.Sprintf("subject %q is of kind %s; only users (kind user) can be privacy managers", pm, sub.Kind))
		}
	}
	if s.AlarmWindow == 0 {
		s.AlarmWindow = Duration(30 * time.Minute)
	}
	if s.AlarmWindow < 0 {
		return fieldErr("alarm_window", "must be positive")
	}
	switch s.ScenarioRule {
	case "":
		s.ScenarioRule = "always"
	case "always", "armed":
	default:
		return fieldErr("scenario_rule", "want always or armed")
	}
	return nil
}

func (m *model) validateDevice(d *Device) error {
	if err := checkRef("site", d.Site, m.sites[d.Site] != nil, "site"); err != nil {
		return err
	}
	switch d.Kind {
	case "":
		d.Kind = DeviceCamera
	case DeviceCamera, DeviceVoiceModule, DeviceMotionCam:
	default:
		return fieldErr("kind", "want camera, voice_module or motion_cam")
	}
	switch {
	case d.Source == "" && d.Kind != DeviceCamera:
	case d.Source == "builtin:demo":
	case strings.HasPrefix(d.Source, "rtsp://") || strings.HasPrefix(d.Source, "rtsps://"):
		if u, err := url.Parse(d.Source); err != nil || u.Host == "" {
			return fieldErr("source", "not a valid rtsp:// URL")
		}
	default:
		return fieldErr("source", "want rtsp://, rtsps:// or builtin:demo")
	}
	if field, problem := CheckTransport(d.Transport, d.UDPReadBuffer); field != "" {
		return fieldErr(field, problem)
	}
	if d.PTZ != nil {
		u, err := url.Parse(d.PTZ.OnvifURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErr("ptz.onvif_url", "want an http(s):// URL of the ONVIF service")
		}
	}
	return nil
}

func (m *model) validateSubject(s *Subject) error {
	switch s.Kind {
	case SubjectUser, SubjectInstaller, SubjectCompany, SubjectEmployee, SubjectIntegrator:
	case "":
		return fieldErr("kind", "is required")
	default:
		return fieldErr("kind", "want user, installer, company, employee or integrator")
	}
	if m.groups[s.ID] != nil {
		return fmt.Errorf("subject %q: a group has this id: %w", s.ID, ErrConflict)
	}
	if s.Kind != SubjectUser {
		for _, site := range m.sites {
			if slices.Contains(site.PrivacyManagers, s.ID) {
				return fieldErr("kind", fmt.Sprintf("subject %q is a privacy manager of site %q and only users can be; remove it there first", s.ID, site.ID))
			}
		}
	}
	if s.Email != "" {
		if !strings.Contains(s.Email, "@") {
			return fieldErr("email", "not an email address")
		}
		if other, ok := m.byEmail[s.Email]; ok && other != s.ID {
			return fmt.Errorf("email %q is already used by subject %q: %w", s.Email, other, ErrConflict)
		}
	}
	if s.Org != "" && m.orgs[s.Org] == nil {
		return fieldErr("org", fmt.Sprintf("no org %q", s.Org))
	}
	for i, site := range s.Sites {
		if m.sites[site] == nil {
			return fieldErr(fmt.Sprintf("sites[%d]", i), fmt.Sprintf("no site %q", site))
		}
	}
	if s.Kind == SubjectEmployee {
		c := m.subjects[s.Company]
		if err := checkRef("company", s.Company, c != nil, "subject"); err != nil {
			return err
		}
		if c.Kind != SubjectCompany {
			return fieldErr("company", fmt.Sprintf("subject %q is not a company", s.Company))
		}
		if _, err := ParseActions(s.Rights); err != nil {
			return fieldErr("rights", err.Error())
		}
	} else if s.Company != "" || len(s.Rights) > 0 {
		return fieldErr("company", "only employees belong to a company")
	}
	if s.RestrictionExempt && s.Kind != SubjectIntegrator {
		return fieldErr("restriction_exempt", "only integrators can be exempt from the provider restriction")
	}
	return nil
}

func (m *model) validateGroup(g *Group) error {
	if m.subjects[g.ID] != nil {
		return fmt.Errorf("group %q: a subject has this id: %w", g.ID, ErrConflict)
	}
	for i, s := range g.Members {
		if m.subjects[s] == nil {
			return fieldErr(fmt.Sprintf("members[%d]", i), fmt.Sprintf("no subject %q", s))
		}
	}
	return nil
}

func (m *model) validateRole(r *Role) error {
	if old := m.roles[r.ID]; old != nil && old.Builtin {
		return fieldErr("id", "built-in roles cannot be changed")
	}
	if _, err := ParseActions(r.Actions); err != nil {
		return fieldErr("actions", err.Error())
	}
	for i, sec := range r.Sections {
		if !validSection(sec) {
			return fieldErr(fmt.Sprintf("sections[%d]", i), fmt.Sprintf("%q: want {kind}:read or {kind}:write", sec))
		}
	}
	return nil
}

// validateGrant checks a compiled grant against the model: references and the
// rules that make a grant impossible (DESIGN §6: rule violations are 400).
func (m *model) validateGrant(c *grantC) error {
	g := c.g
	sub, grp := m.subjects[g.Subject], m.groups[g.Subject]
	if err := checkRef("subject", g.Subject, sub != nil || grp != nil, "subject or group"); err != nil {
		return err
	}
	var dev *Device
	if g.Device != "" {
		dev = m.devices[g.Device]
		if dev == nil {
			return fieldErr("device", fmt.Sprintf("no device %q", g.Device))
		}
	} else if m.sites[g.Site] == nil {
		return fieldErr("site", fmt.Sprintf("no site %q", g.Site))
	}
	for i, d := range g.ExceptDevices {
		if m.devices[d] == nil {
			return fieldErr(fmt.Sprintf("except_devices[%d]", i), fmt.Sprintf("no device %q", d))
		}
	}
	acts := c.actions
	if g.Role != "" {
		if m.roles[g.Role] == nil {
			return fieldErr("role", fmt.Sprintf("no role %q", g.Role))
		}
		acts = m.roleAct[g.Role]
	}
	if c.cond == condAfterAlarm && (sub == nil || sub.Kind != SubjectCompany) {
		return fieldErr("condition", "after_alarm is available only for companies")
	}
	if (dev != nil && dev.Kind == DeviceVoiceModule) || acts&actionsPermanentOnly != 0 {
		switch {
		case g.NotAfter != nil:
			return fieldErr("not_after", "photo and voice-module audio permissions are permanent only")
		case g.NotBefore != nil:
			return fieldErr("not_before", "photo and voice-module audio permissions are permanent only")
		case len(g.Schedule) > 0:
			return fieldErr("schedule", "photo and voice-module audio permissions are permanent only")
		}
	}
	return nil
}
