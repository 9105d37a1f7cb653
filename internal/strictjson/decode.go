// Package strictjson holds camgate's one strict decoder for API bodies: a
// body is a single JSON object whose fields all exist, appear once (in any
// case) and have the right types, with nothing after it. Every failure is
// an *Error naming the field, for a 400 that says which field and why.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sort"
	"strings"
)

// Error is a body that does not decode: Field names the JSON field ("body"
// for the text as a whole) and Msg says why.
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, msg string) error { return &Error{Field: field, Msg: msg} }

// Options adjusts how a failure is worded; the zero value is authz's.
type Options struct {
	// ValueHint, when set, is the message for a field whose value does not
	// decode (a bad time, say) and a type mismatch is worded "want T"
	// before any other check; when empty the decoder's own message is
	// kept, cleaned of its Go type names where it can be.
	ValueHint string
}

// Decode decodes body into v (a pointer to a struct), rejecting an empty
// body, unknown fields, wrong types, trailing data and duplicate keys.
func Decode(body []byte, v any, opt Options) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fieldErr("body", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if opt.ValueHint != "" {
			return hintedError(body, v, err, opt.ValueHint)
		}
		if f := failingField(body, v, true); f != "" {
			return fieldErr(f, cleanJSONError(err))
		}
		return jsonFieldError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr("body", "unexpected data after the JSON object")
	}
	return CheckDuplicateKeys(body)
}

// failingField finds which top-level field of body fails to decode into a
// value of v's type (errors from a field's UnmarshalJSON, such as a bad time,
// do not name the field). strict also refuses unknown fields in that field.
func failingField(body []byte, v any, strict bool) string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return ""
	}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	t := reflect.TypeOf(v).Elem()
	for _, k := range names {
		one, _ := json.Marshal(map[string]json.RawMessage{k: raw[k]})
		dec := json.NewDecoder(bytes.NewReader(one))
		if strict {
			dec.DisallowUnknownFields()
		}
		if dec.Decode(reflect.New(t).Interface()) != nil {
			return k
		}
	}
	return ""
}

func cleanJSONError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "json:") {
		return msg[i+2:]
	}
	return strings.TrimPrefix(msg, "json: ")
}

func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := te.Field
		if f == "" {
			f = "body"
		}
		return fieldErr(f, "want "+te.Type.String())
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return unknownField(rest)
	}
	// Errors from a field's UnmarshalJSON ("json: cannot unmarshal ... into Go struct field X.y of type ...").
	if i := strings.Index(msg, "Go struct field "); i >= 0 {
		f := msg[i+len("Go struct field "):]
		if j := strings.IndexByte(f, ' '); j >= 0 {
			f = f[:j]
		}
		if j := strings.IndexByte(f, '.'); j >= 0 {
			f = f[j+1:]
		}
		return fieldErr(f, msg)
	}
	return fieldErr("body", "invalid JSON: "+msg)
}

// unknownField names the unknown field of encoding/json's message; a key
// that is the empty string is named `""`, so the error still names a field.
func unknownField(quoted string) error {
	name := strings.TrimSuffix(strings.TrimPrefix(quoted, `"`), `"`)
	if name == "" {
		name = `""`
	}
	return fieldErr(name, "unknown field")
}

// hintedError words a decode failure with Options.ValueHint: a named type
// mismatch first, then an unknown field, then the first field whose value
// alone fails, else the body as a whole.
func hintedError(body []byte, v any, err error, hint string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fieldErr(te.Field, "want "+te.Type.String())
	}
	if rest, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return unknownField(rest)
	}
	if k := failingField(body, v, false); k != "" {
		return fieldErr(k, hint)
	}
	return fieldErr("body", "invalid JSON")
}
