package access

import (
	"strings"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/links"
)

// LinkPolicy implements links.Policy over authz: admins manage links by
// their links:read/links:write sections and only within their reach
// (individual access: links they or their reports created, on devices
// they see); a link's creator must still be able to give what the link
// gives — a subject needs `share` and each action on the device, an admin
// must still exist with links:write and see the device.
type LinkPolicy struct{ Authz *authz.Service }

// MayManage implements links.Policy.
func (lp LinkPolicy) MayManage(c links.Creator, write bool) bool {
	if write {
		return lp.Authz.AdminAllows(c, "links:write")
	}
	return lp.Authz.AdminAllows(c, "links:read")
}

// Sees implements links.Policy.
func (lp LinkPolicy) Sees(c links.Creator, creator, device string) bool {
	return lp.Authz.AdminSeesCreator(c, creator) && lp.Authz.AdminSees(c, "devices", device)
}

// CreatorMay implements links.Policy.
func (lp LinkPolicy) CreatorMay(creator, device, action string, now time.Time) bool {
	switch c := creatorCaller(creator); {
	case c.Root:
		return true
	case c.Admin != "":
		return lp.Authz.AdminAllows(c, "links:write") && lp.Authz.AdminSees(c, "devices", device)
	}
	a, err := authz.ParseAction(action)
	return err == nil && lp.Authz.Check(creator, device, a, now).Allowed
}

// Device implements links.Policy.
func (lp LinkPolicy) Device(id string) (string, bool) {
	d, ok := lp.Authz.Device(id)
	if !ok {
		return "", false
	}
	if d.Name != "" {
		return d.Name, true
	}
	return id, true
}

// creatorCaller is the API caller a stored link creator names.
func creatorCaller(creator string) authz.Caller {
	if creator == "root" {
		return authz.Caller{Root: true}
	}
	if id, ok := strings.CutPrefix(creator, "admin:"); ok {
		return authz.Caller{Admin: id}
	}
	return authz.Caller{Subject: creator}
}
