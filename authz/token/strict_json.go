package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The jwt library decodes the header into a map and the payload with
// encoding/json, which keeps the last of duplicate members, matches member
// names to claims case-insensitively (with Unicode folding: "SUB" and "ſub"
// both set sub) and decodes a quoted number into a NumericDate
// ("exp":"9999999999"). A token that means one thing to the issuer's parser
// and another to ours must not verify, so Verify first checks the decoded
// segments itself: each is one JSON object whose top-level member names are
// distinct under case folding, and in the payload exp, nbf and iat, when
// present, are JSON numbers (RFC 7519 NumericDate). camgate reads only
// top-level members; nested values are skipped, not checked for duplicates.

// maxFastMembers is how many members are compared pairwise on the stack;
// beyond it names are put in a map (an allocation, only for unusual tokens).
const maxFastMembers = 32

// maxDecoded is the largest decoded segment of a token of MaxTokenBytes.
const maxDecoded = MaxTokenBytes/4*3 + 3

var errNotObject = errors.New("not a JSON object")

// CheckStructure reports, as an error wrapping ErrMalformed, a token whose
// header or payload is not a single JSON object with distinct member names
// (compared case-insensitively, as encoding/json matches claims), or whose
// exp, nbf or iat is not a JSON number. It does not verify anything else and
// does not allocate for ordinary tokens; Verify calls it before parsing.
func CheckStructure(raw string) error {
	hdr, rest, ok1 := strings.Cut(raw, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || len(hdr) > MaxTokenBytes || len(payload) > MaxTokenBytes {
		return nil // the parser reports the wrong segment count or the size
	}
	var buf [maxDecoded]byte
	n, ok := decodeSegment(buf[:], hdr)
	if !ok {
		return fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	if err := checkObject(buf[:n], false); err != nil {
		return fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if n, ok = decodeSegment(buf[:], payload); !ok {
		return fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	if err := checkObject(buf[:n], true); err != nil {
		return fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	return nil
}

// decodeSegment decodes unpadded base64url into dst (no newlines, no
// padding: what the parser's strict decoding accepts, less its tolerance of
// line breaks, which no issuer emits). It reports false on anything else.
func decodeSegment(dst []byte, s string) (int, bool) {
	if len(s)%4 == 1 || len(s)/4*3+2 > len(dst) {
		return 0, false
	}
	n := 0
	var acc uint32
	bitsHeld := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var v byte
		switch {
		case c >= 'A' && c <= 'Z':
			v = c - 'A'
		case c >= 'a' && c <= 'z':
			v = c - 'a' + 26
		case c >= '0' && c <= '9':
			v = c - '0' + 52
		case c == '-':
			v = 62
		case c == '_':
			v = 63
		default:
			return 0, false
		}
		acc = acc<<6 | uint32(v)
		bitsHeld += 6
		if bitsHeld >= 8 {
			bitsHeld -= 8
			dst[n] = byte(acc >> bitsHeld)
			n++
		}
	}
	return n, true
}

// checkObject checks one decoded segment (see CheckStructure). It must be
// right for valid JSON and terminate on anything: invalid JSON is refused
// by the parser afterwards whatever is concluded here.
func checkObject(b []byte, numericDates bool) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return trailing(b, i+1)
	}
	var fast [maxFastMembers][]byte
	var names map[string]struct{}
	count := 0
	for {
		if i >= len(b) || b[i] != '"' {
			return errNotObject
		}
		end, escaped := skipString(b, i)
		if end < 0 {
			return errNotObject
		}
		name := b[i+1 : end-1]
		if escaped { // rare: copy, so b (the caller's stack buffer) does not escape
			var s string
			if err := json.Unmarshal(append([]byte(nil), b[i:end]...), &s); err != nil {
				return errNotObject
			}
			name = []byte(s)
		}
		switch {
		case count < maxFastMembers:
			for _, prev := range fast[:count] {
				if bytes.EqualFold(prev, name) {
					return fmt.Errorf("duplicate member %q", clip(name))
				}
			}
			fast[count] = name
		default:
			if names == nil {
				names = make(map[string]struct{}, 2*maxFastMembers)
				for _, prev := range fast {
					names[foldKey(prev)] = struct{}{}
				}
			}
			k := foldKey(name)
			if _, dup := names[k]; dup {
				return fmt.Errorf("duplicate member %q", clip(name))
			}
			names[k] = struct{}{}
		}
		count++
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return errNotObject
		}
		i = skipSpace(b, i+1)
		if numericDates && isNumericDateClaim(name) && (i >= len(b) || (b[i] != '-' && (b[i] < '0' || b[i] > '9'))) {
			return fmt.Errorf("%s is not a NumericDate (a JSON number of seconds)", bytes.ToLower(name))
		}
		if i = skipValue(b, i); i < 0 {
			return errNotObject
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return errNotObject
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return trailing(b, i+1)
		default:
			return errNotObject
		}
	}
}

func isNumericDateClaim(name []byte) bool {
	return bytes.EqualFold(name, []byte("exp")) || bytes.EqualFold(name, []byte("nbf")) || bytes.EqualFold(name, []byte("iat"))
}

func trailing(b []byte, i int) error {
	if skipSpace(b, i) != len(b) {
		return errors.New("data after the JSON object")
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the closing quote of the string at
// b[i] and whether it holds escapes, or -1 when it is not closed.
func skipString(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// skipValue returns the index after the JSON value at b[i], or -1. Nested
// objects and arrays are skipped by counting brackets outside strings.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := skipString(b, i)
		return end
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, _ := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++ // number, true, false, null
	}
	return i
}

// foldKey maps every rune to the smallest rune of its Unicode simple-folding
// orbit, so foldKey(a) == foldKey(b) exactly when bytes.EqualFold(a, b).
func foldKey(name []byte) string {
	var sb strings.Builder
	for len(name) > 0 {
		r, size := utf8.DecodeRune(name)
		name = name[size:]
		low := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			low = min(low, f)
		}
		sb.WriteRune(low)
	}
	return sb.String()
}

// clip bounds an attacker-chosen name before it goes into an error message.
func clip(name []byte) string {
	if len(name) > 32 {
		return string(name[:32]) + "…"
	}
	return string(name)
}
