package authz_test

import (
	. "github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/jsonapi"

	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Issue 15 hole 13: a duplicate key anywhere in an API body is a 400 naming
// it (encoding/json would keep the last one, a proxy or log reader the
// first), and nothing is written.
func TestAPIRefusesDuplicateKeys(t *testing.T) {
	h := newHarness(t)
	h.base()
	cases := []struct {
		name, method, path, body, field string
	}{
		{"top level", "PUT", "/devices/cam9", `{"site":"hq","source":"builtin:demo","site":"lobby"}`, "site"},
		{"top level, other case", "PUT", "/devices/cam9", `{"site":"hq","source":"builtin:demo","SITE":"lobby"}`, "SITE"},
		{"nested object", "PUT", "/devices/cam9", `{"site":"hq","source":"builtin:demo","ptz":{"onvif_url":"http://x/onvif","password":"a","password":"b"}}`, "ptz.password"},
		{"inside an array", "PUT", "/grants/g9", `{"subject":"alice","device":"cam1","actions":["live"],"schedule":[{"days":["mon"],"from":"08:00","to":"18:00"},{"days":["tue"],"from":"08:00","to":"18:00","to":"23:59"}]}`, "schedule[1].to"},
		{"actions widened by a second key", "PUT", "/grants/g9", `{"subject":"alice","device":"cam1","actions":["live"],"actions":["live","download"]}`, "actions"},
		{"bulk access", "POST", "/bulk-access", `{"subjects":["bob"],"devices":["cam1"],"actions":["live"],"actions":["live","archive"]}`, "actions"},
		{"unknown nested keys are still duplicates", "PUT", "/sites/s9", `{"org":"acme","org":"acme"}`, "org"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, h, root, tc.method, tc.path, tc.body, nil, tc.field, "duplicate key")
		})
	}
	h.fails(root, "GET", "/devices/cam9", nil, ErrNotFound, "")
	h.fails(root, "GET", "/grants/g9", nil, ErrNotFound, "")
	if h.allowed("bob", "cam1", ActionLive) || h.allowed("alice", "cam1", ActionDownload) {
		t.Fatal("a refused body with duplicate keys gave access")
	}
}

func TestCheckDuplicateKeys(t *testing.T) {
	cases := []struct{ body, field string }{
		{`{}`, ""},
		{`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, ""},
		{`[{"a":1},{"a":1}]`, ""},
		{`{"a":1,"a":2}`, "a"},
		{`{"x":{"":1,"":2}}`, `x.""`},
		{`{"a":{"b":[1,{"c":1,"C":2}]}}`, "a.b[1].C"},
		{`{"k":1,"\u212a":2}`, "\u212a"}, // KELVIN SIGN folds to k, as encoding/json matches it
		{`{"s":1,"\u017f":2}`, "\u017f"}, // LATIN SMALL LETTER LONG S folds to s
		{`{"a":1} {"b":1,"b":2}`, "b"},
		{`{"a":`, "body"},
		{`{"a" 1}`, "body"},
		{`{"n":1e999,"m":1e999}`, ""},
	}
	for _, tc := range cases {
		err := jsonapi.CheckDuplicateKeys([]byte(tc.body))
		var fe *FieldError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v; want no error", tc.body, err)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: %v; want a FieldError naming %q", tc.body, err, tc.field)
		}
	}
}

// FuzzDecodeJSONDuplicateKeys: CheckDuplicateKeys never panics and answers
// only *FieldError; a body it accepts gets refused once any of its top-level
// keys is repeated; decodeJSON never accepts a body with a duplicate key.
func FuzzDecodeJSONDuplicateKeys(f *testing.F) {
	f.Add([]byte(`{"site":"hq","site":"lobby"}`))
	f.Add([]byte(`{"site":"hq","Site":"lobby","ptz":{"onvif_url":"http://x","password":"a"}}`))
	f.Add([]byte(`{"subject":"alice","device":"cam1","actions":["live"],"schedule":[{"days":["mon"],"from":"08:00","to":"18:00","TO":"19:00"}]}`))
	f.Add([]byte(`{"a":[[[{"b":1,"b":2}]]]}`))
	f.Add([]byte(`{"k":1,"\u212a":2}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		err := jsonapi.CheckDuplicateKeys(body)
		var fe *FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field == "") {
			t.Fatalf("%q: %v is not a FieldError naming a field", body, err)
		}
		var dev Device
		if jsonapi.Decode(body, &dev) == nil && err != nil {
			t.Fatalf("%q: decodeJSON accepted a body CheckDuplicateKeys refuses (%v)", body, err)
		}
		var top map[string]json.RawMessage
		trimmed := bytes.TrimSpace(body)
		if err != nil || json.Unmarshal(trimmed, &top) != nil || len(top) == 0 || !json.Valid(trimmed) {
			return
		}
		for k, v := range top {
			key, _ := json.Marshal(k)
			dup := append(append(append(append([]byte("{"), key...), ':'), v...), ',')
			dup = append(dup, trimmed[1:]...)
			err := jsonapi.CheckDuplicateKeys(dup)
			if !errors.As(err, &fe) || !(strings.EqualFold(fe.Field, k) || k == "" && fe.Field == `""`) {
				t.Fatalf("%q with %q repeated: %v; want a FieldError naming it", body, k, err)
			}
			break
		}
	})
}
