package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckDuplicateKeys reports a key that appears twice in one object of the
// JSON text body, at any depth, as an *Error naming the key's path
// ("ptz.password", "schedule[0].days"). encoding/json keeps the last of
// duplicate keys and matches field names regardless of case, so
// {"site":"a","SITE":"b"} would mean "b" to camgate but "a" to a proxy or
// audit tool reading the first: keys that differ only in case (Unicode
// simple folding, as encoding/json folds) are the same key here. Text that
// is not valid JSON is an *Error naming "body". Every value in body is
// walked, not only the first.
func CheckDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers are not parsed, so 1e999 is no error here
	type frame struct {
		obj     bool
		path    string
		keys    map[string]struct{}
		wantKey bool
		key     string // object: the key of the value being read
		index   int    // array: the index of the value being read
	}
	var stack []*frame
	childPath := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.obj {
			key := f.key
			if key == "" {
				key = `""` // an empty key is still named
			}
			if f.path == "" {
				return key
			}
			return f.path + "." + key
		}
		return f.path + "[" + strconv.Itoa(f.index) + "]"
	}
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		if f := stack[len(stack)-1]; f.obj {
			f.wantKey = true
		} else {
			f.index++
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if len(stack) > 0 {
				return fieldErr("body", "invalid JSON: unexpected end of input")
			}
			return nil
		}
		if err != nil {
			return fieldErr("body", "invalid JSON: "+strings.TrimPrefix(err.Error(), "json: "))
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			f := stack[n-1]
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			key, _ := tok.(string) // the decoder returns only strings in key position
			folded := foldKey(key)
			f.key, f.wantKey = key, false
			if _, dup := f.keys[folded]; dup {
				return fieldErr(childPath(), "duplicate key: it appears more than once in the same object (keys match regardless of case)")
			}
			f.keys[folded] = struct{}{}
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, path: childPath(), keys: map[string]struct{}{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{path: childPath()})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// foldKey maps every string to one representative of its case-folding
// class: foldKey(a) == foldKey(b) exactly when strings.EqualFold(a, b).
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// The smallest rune of an ASCII letter's folding class is its
		// upper case (K for k and the Kelvin sign, S for s and long s).
		return strings.ToUpper(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}
