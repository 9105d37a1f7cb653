package access

import (
	"github.com/camgate/camgate/gateway/session"
)

// MaySessions tells whether p may list (write=false) or kick (write=true)
// sessions at all: root, or an admin whose sections include
// sessions:read / sessions:write. Viewers never.
func (s *Service) MaySessions(p Principal, write bool) bool {
	section := "sessions:read"
	if write {
		section = "sessions:write"
	}
	return p.IsAdmin() && s.Authz.AdminAllows(p.Caller(), section)
}

// SeesSession tells whether p may read or kick one session: with
// individual access, an admin sees the sessions on cameras within its reach
// and no others (their subjects and remote addresses included), as for
// every other object.
func (s *Service) SeesSession(p Principal, ss *session.Session, write bool) bool {
	return s.MaySessions(p, write) && s.Authz.AdminSees(p.Caller(), "devices", ss.Camera)
}
