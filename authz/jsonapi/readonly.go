package jsonapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/camgate/camgate/authz"
)

// checkReadOnly refuses read-only fields (authz.ReadOnlyFields) in body:
// any value on create (old == nil), a value different from what a GET of
// old shows on replace, so a GET-modify-PUT works. JSON null counts as
// absent. Field names match case-insensitively, as encoding/json matches
// them.
func checkReadOnly(kind string, body []byte, old any) error {
	var got map[string]json.RawMessage
	if json.Unmarshal(body, &got) != nil {
		return nil // Decode has refused it already
	}
	var shown map[string]json.RawMessage
	if old != nil {
		b, err := json.Marshal(authz.View(old))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &shown); err != nil {
			return err
		}
	}
	for _, f := range authz.ReadOnlyFields(kind) {
		for k, v := range got {
			if !strings.EqualFold(k, f.Name) || string(v) == "null" {
				continue
			}
			if old == nil {
				return fieldErr(f.Name, "is read-only ("+f.SetBy+"); leave it out when creating")
			}
			if !sameJSON(v, shown[f.Name]) {
				return fieldErr(f.Name, "is read-only ("+f.SetBy+"); send back the stored value or leave it out")
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
