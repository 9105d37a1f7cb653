package authz

// Read-only fields (DESIGN §6, "→" in the table) are state that camgate sets:
// by an action (arm, alarm, allow-provider, accept), from other fields
// (a share's recipient), or when the record is written (created_by). A
// client cannot set them (issue 15 hole 6: an alarm_until of 2099 made an
// after_alarm grant permanent). On create any value is a 400 naming the
// field; on replace the value a GET returned may be sent back unchanged (a
// GET-modify-PUT works) and anything else is a 400. Leaving one out keeps
// the stored value.

// ReadOnlyField is one read-only JSON field of a kind and who sets it.
type ReadOnlyField struct {
	Name, SetBy string
}

// ReadOnlyFields lists kind's read-only fields. The typed methods ignore
// them on write; the JSON transport refuses them (authz/jsonapi).
func ReadOnlyFields(kind string) []ReadOnlyField {
	created := ReadOnlyField{"created_by", "camgate records who created the record"}
	switch kind {
	case kindOrgs:
		return []ReadOnlyField{{"provider_allowed_until", "set by POST /orgs/{id}/allow-provider"}, created}
	case kindSites:
		return []ReadOnlyField{{"armed", "set by POST /sites/{id}/arm and /disarm"}, created}
	case kindDevices:
		return []ReadOnlyField{{"alarm_until", "set by POST /devices/{id}/alarm"}, created}
	case kindRoles:
		return []ReadOnlyField{{"builtin", "only camgate's own roles are built in"}, created}
	case kindGrants:
		return []ReadOnlyField{{"source", "camgate records how the grant came about"}, created}
	case kindShares:
		return []ReadOnlyField{{"state", "set by the recipient's accept or reject"},
			{"recipient", "found from recipient_email"}, created}
	case kindRequests:
		return []ReadOnlyField{{"state", "set by approve or deny"}, {"decided_by", "set by approve or deny"},
			{"grants", "set by approve"}, created}
	case kindAdmins:
		return []ReadOnlyField{{"key", "generated on create and shown once"}, {"key_hash", "never set through the API"},
			{"sections", "snapshotted from roles"}, {"individual", "resolved from roles and individual_access"}, created}
	}
	return []ReadOnlyField{created}
}
