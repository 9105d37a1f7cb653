package access

import (
	"fmt"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/ptz"
)

// PTZHolder decides whether p may steer camera and with which priority:
// root always; an API admin with ptz:write whose individual access reaches
// the camera; a subject with `ptz` on it, ranked by its kind (a privacy
// manager of the camera's site above its kind).
func (s *Service) PTZHolder(p Principal, camera string) (ptz.Holder, error) {
	switch p.Kind {
	case KindRoot:
		return ptz.Holder{ID: "root", Kind: ptz.KindAdmin}, nil
	case KindAdmin:
		c := p.Caller()
		if !s.Authz.AdminAllows(c, "ptz:write") {
			return ptz.Holder{}, fmt.Errorf("%w: this admin's roles do not include ptz:write", ErrForbidden)
		}
		if !s.Authz.AdminSees(c, "devices", camera) {
			return ptz.Holder{}, fmt.Errorf("%w: camera %s", ErrNotVisible, camera)
		}
		return ptz.Holder{ID: p.ID, Kind: ptz.KindAdmin}, nil
	case KindSubject:
	default:
		return ptz.Holder{}, fmt.Errorf("%w: not an API caller", ErrForbidden)
	}
	d := s.Authz.Check(p.ID, camera, authz.ActionPTZ, time.Now())
	if !d.Allowed {
		if d.Reason == authz.ReasonStoreUnavailable {
			return ptz.Holder{}, fmt.Errorf("%w: %s", ErrUnavailable, d.Reason)
		}
		return ptz.Holder{}, fmt.Errorf("%w: ptz not allowed: %s", ErrForbidden, d.Reason)
	}
	kind := ptz.KindUser
	if sub, ok := s.Authz.Subject(p.ID); ok && sub.Kind != "" {
		kind = sub.Kind
	}
	if s.Authz.PrivacyManagerOf(p.ID, camera) {
		kind = ptz.KindPrivacyManager
	}
	return ptz.Holder{ID: p.ID, Kind: kind}, nil
}
