package authz

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// Read-only fields (DESIGN §6, "→" in the table) are state that camgate sets:
// by an action (arm, alarm, allow-provider, accept), from other fields
// (a share's recipient), or when the record is written (created_by). A
// client cannot set them (issue 15 hole 6: an alarm_until of 2099 made an
// after_alarm grant permanent). On create any value is a 400 naming the
// field; on replace the value a GET returned may be sent back unchanged (a
// GET-modify-PUT works) and anything else is a 400. Leaving one out keeps
// the stored value.

// readOnlyField is one read-only JSON field of a kind and who sets it.
type readOnlyField struct {
	name, setBy string
}

func readOnlyFields(kind string) []readOnlyField {
	created := readOnlyField{"created_by", "camgate records who created the record"}
	switch kind {
	case kindOrgs:
		return []readOnlyField{{"provider_allowed_until", "set by POST /orgs/{id}/allow-provider"}, created}
	case kindSites:
		return []readOnlyField{{"armed", "set by POST /sites/{id}/arm and /disarm"}, created}
	case kindDevices:
		return []readOnlyField{{"alarm_until", "set by POST /devices/{id}/alarm"}, created}
	case kindRoles:
		return []readOnlyField{{"builtin", "only camgate's own roles are built in"}, created}
	case kindGrants:
		return []readOnlyField{{"source", "camgate records how the grant came about"}, created}
	case kindShares:
		return []readOnlyField{{"state", "set by the recipient's accept or reject"},
			{"recipient", "found from recipient_email"}, created}
	case kindRequests:
		return []readOnlyField{{"state", "set by approve or deny"}, {"decided_by", "set by approve or deny"},
			{"grants", "set by approve"}, created}
	case kindAdmins:
		return []readOnlyField{{"key", "generated on create and shown once"}, {"key_hash", "never set through the API"},
			{"sections", "snapshotted from roles"}, {"individual", "resolved from roles and individual_access"}, created}
	}
	return []readOnlyField{created}
}

// checkReadOnly refuses read-only fields in body: any value on create (old
// == nil), a value different from what a GET of old shows on replace. JSON
// null counts as absent. Field names match case-insensitively, as
// encoding/json matches them.
func checkReadOnly(kind string, body []byte, old any) error {
	var got map[string]json.RawMessage
	if json.Unmarshal(body, &got) != nil {
		return nil // decodeJSON has refused it already
	}
	var shown map[string]json.RawMessage
	if old != nil {
		b, err := json.Marshal(view(old))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &shown); err != nil {
			return err
		}
	}
	for _, f := range readOnlyFields(kind) {
		for k, v := range got {
			if !strings.EqualFold(k, f.name) || string(v) == "null" {
				continue
			}
			if old == nil {
				return fieldErr(f.name, "is read-only ("+f.setBy+"); leave it out when creating")
			}
			if !sameJSON(v, shown[f.name]) {
				return fieldErr(f.name, "is read-only ("+f.setBy+"); send back the stored value or leave it out")
			}
		}
	}
	return nil
}

// sameJSON compares two JSON values by meaning: equal after decoding, with
// strings that are RFC 3339 times compared as instants.
func sameJSON(a, b json.RawMessage) bool {
	if b == nil {
		return false
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	if xs, ok := x.(string); ok {
		if ys, ok := y.(string); ok {
			tx, errX := time.Parse(time.RFC3339Nano, xs)
			ty, errY := time.Parse(time.RFC3339Nano, ys)
			if errX == nil && errY == nil {
				return tx.Equal(ty)
			}
		}
	}
	return reflect.DeepEqual(x, y)
}
