package strictjson

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecode: any input either decodes — and then is plain JSON that
// encoding/json accepts, with no duplicate keys — or fails with an *Error
// naming a field; it never panics.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"name":"a","tags":["x"]}`, `{"name":"a","NAME":"b"}`, `{"until":"x"}`, `{} []`, `{"inner":{"key":"a"}}`, `{"":""}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, opt := range []Options{{}, {ValueHint: "invalid value"}} {
			var v body
			err := Decode([]byte(in), &v, opt)
			if err == nil {
				if !json.Valid([]byte(in)) {
					t.Fatalf("Decode accepted invalid JSON %q", in)
				}
				if CheckDuplicateKeys([]byte(in)) != nil {
					t.Fatalf("Decode accepted duplicate keys in %q", in)
				}
				continue
			}
			var se *Error
			if !errors.As(err, &se) || se.Field == "" {
				t.Fatalf("Decode(%q) = %v; want an *Error naming a field", in, err)
			}
		}
	})
}
