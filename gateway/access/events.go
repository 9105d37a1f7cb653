package access

import (
	"github.com/camgate/camgate/authz"
)

// SeesEvent decides whether p may see now a notification about device
// (the event feed asks it for every event it delivers, so a revocation
// stops delivery from the next event on):
//   - root sees every event;
//   - an API admin needs devices:read and the device within its
//     individual access;
//   - a subject needs `notices` on the device (a privacy manager of its
//     site has it with the full access no grant takes away);
//   - an event addressed to a recipient (a share offer) is that subject's
//     alone: the recipient has no `notices` before accepting;
//   - share links see none: they are not API callers.
//
// An unreachable store refuses (fail closed).
func (s *Service) SeesEvent(p Principal, device, recipient string) bool {
	switch p.Kind {
	case KindRoot:
		return true
	case KindAdmin:
		c := p.Caller()
		return s.Authz.AdminAllows(c, "devices:read") && s.Authz.AdminSees(c, "devices", device)
	case KindSubject:
		if recipient != "" {
			return p.ID == recipient
		}
		return s.Authz.Check(p.ID, device, authz.ActionNotices, s.Now()).Allowed || s.Authz.PrivacyManagerOf(p.ID, device)
	}
	return false
}
