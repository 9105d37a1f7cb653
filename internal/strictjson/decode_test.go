package strictjson

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type body struct {
	Name  string     `json:"name"`
	Tags  []string   `json:"tags"`
	Until *time.Time `json:"until"`
	Inner *struct {
		Key string `json:"key"`
	} `json:"inner"`
}

func TestDecodeNamesTheField(t *testing.T) {
	const hint = "invalid value"
	cases := []struct {
		name, in   string
		hint       string
		field, msg string // field "" = no error
	}{
		{"ok", `{"name":"a","tags":["x"],"until":"2026-01-01T00:00:00Z"}`, "", "", ""},
		{"empty", "  ", "", "body", "a JSON object is required"},
		{"unknown field", `{"name":"a","colour":"red"}`, "", "colour", "unknown field"},
		{"wrong type", `{"tags":"x"}`, "", "tags", "of type []string"},
		{"wrong type, hinted", `{"tags":"x"}`, hint, "tags", "want []string"},
		{"bad time", `{"until":"tomorrow"}`, "", "until", "cannot parse"},
		{"bad time, hinted", `{"until":"tomorrow"}`, hint, "until", hint},
		{"trailing data", `{"name":"a"} {}`, "", "body", "unexpected data after the JSON object"},
		{"duplicate key", `{"name":"a","NAME":"b"}`, "", "NAME", "duplicate key"},
		{"nested duplicate", `{"inner":{"key":"a","key":"b"}}`, hint, "inner.key", "duplicate key"},
		{"not JSON", `{"name":`, "", "body", "invalid JSON"},
		{"not JSON, hinted", `{"name":`, hint, "body", "invalid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v body
			err := Decode([]byte(tc.in), &v, Options{ValueHint: tc.hint})
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Decode(%s) = %v; want no error", tc.in, err)
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) || se.Field != tc.field || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("Decode(%s) = %v; want an error naming %q saying %q", tc.in, err, tc.field, tc.msg)
			}
		})
	}
}
