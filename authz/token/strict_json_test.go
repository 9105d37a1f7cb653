package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// hsRaw signs an arbitrary header and payload with the HS256 test secret:
// the tokens below are validly signed, so only the structural check can
// refuse them.
func hsRaw(t *testing.T, header, payload string) string {
	t.Helper()
	e := base64.RawURLEncoding.EncodeToString
	signing := e([]byte(header)) + "." + e([]byte(payload))
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(signing))
	return signing + "." + e(mac.Sum(nil))
}

func TestVerifyRefusesAmbiguousJSON(t *testing.T) {
	v := newVerifier(t, &Verifier{HS256Secret: testSecret})
	exp := itoa(testNow.Add(time.Hour).Unix())
	hdr := `{"alg":"HS256","typ":"JWT"}`
	many := func(dup string) string { // 40 members: past the stack fast path
		var sb strings.Builder
		sb.WriteString(`{"sub":"alice","exp":` + exp)
		for i := range 38 {
			fmt.Fprintf(&sb, `,"c%d":%d`, i, i)
		}
		return sb.String() + dup + "}"
	}
	tests := []struct {
		name            string
		header, payload string
		ok              bool
	}{
		{"plain", hdr, `{"sub":"alice","exp":` + exp + `}`, true},
		{"whitespace and a fractional exp", hdr, " {\n\t\"sub\" : \"alice\" ,\r\n \"exp\" : " + exp + ".5 } ", true},
		{"nested duplicates are not camgate's claims", hdr, `{"sub":"alice","exp":` + exp + `,"x":{"a":1,"a":[{"b":"}"}]}}`, true},
		{"40 distinct members", hdr, many(""), true},
		{"exp as a string", hdr, `{"sub":"alice","exp":"9999999999"}`, false},
		{"nbf as a string", hdr, `{"sub":"alice","exp":` + exp + `,"nbf":"0"}`, false},
		{"iat as a string", hdr, `{"sub":"alice","exp":` + exp + `,"iat":"0"}`, false},
		{"EXP as a string (encoding/json matches it to exp)", hdr, `{"sub":"alice","EXP":"9999999999"}`, false},
		{"exp null", hdr, `{"sub":"alice","exp":null}`, false},
		{"exp as an array", hdr, `{"sub":"alice","exp":[9999999999]}`, false},
		{"duplicate sub", hdr, `{"sub":"alice","exp":` + exp + `,"sub":"root"}`, false},
		{"duplicate exp", hdr, `{"sub":"alice","exp":1,"exp":` + exp + `}`, false},
		{"sub and SUB", hdr, `{"sub":"alice","exp":` + exp + `,"SUB":"root"}`, false},
		{"sub and ſub (Unicode folding)", hdr, `{"sub":"alice","exp":` + exp + `,"ſub":"root"}`, false},
		{"sub and an escaped sub", hdr, `{"sub":"alice","exp":` + exp + `,"s\u0075b":"root"}`, false},
		{"duplicate past the fast path", hdr, many(`,"sub":"root"`), false},
		{"duplicate alg in the header", `{"alg":"HS256","alg":"HS256"}`, `{"sub":"alice","exp":` + exp + `}`, false},
		{"duplicate kid in the header", `{"alg":"HS256","kid":"a","KID":"b"}`, `{"sub":"alice","exp":` + exp + `}`, false},
		{"payload is an array", hdr, `[{"sub":"alice","exp":` + exp + `}]`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(hsRaw(t, tc.header, tc.payload))
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Verify = %v, want accepted", err)
			case tc.ok && c.Subject != "alice":
				t.Fatalf("claims = %+v, want sub alice", c)
			case !tc.ok && err == nil:
				t.Fatalf("Verify accepted it: %+v", c)
			case !tc.ok && !wrapsExactly(err, ErrMalformed):
				t.Fatalf("Verify = %v, want only ErrMalformed", err)
			}
		})
	}
}

// FuzzCheckObject compares the scanner with encoding/json on decoded
// segments: on valid JSON it accepts exactly the objects whose top-level
// names are distinct under case folding and whose exp/nbf/iat are numbers.
func FuzzCheckObject(f *testing.F) {
	for _, s := range []string{`{"sub":"a","exp":1}`, `{"sub":"a","SUB":"b"}`, `{"exp":"1"}`, `{"a":{"a":1,"a":2}}`, `{"s\u0075b":1,"sub":2}`, `{}`, `[]`, `{"a":[1,"]",{"b":"\""}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkObject(b, true)
		if !json.Valid(b) {
			return // the parser refuses it whatever checkObject said
		}
		want := referenceCheck(b)
		if (err == nil) != want {
			t.Fatalf("checkObject(%q) = %v; reference says ok=%v", b, err, want)
		}
	})
}

// referenceCheck is the slow, obviously right version of checkObject for
// valid JSON, built on encoding/json's tokenizer.
func referenceCheck(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		name := tok.(string)
		for _, prev := range names {
			if strings.EqualFold(prev, name) {
				return false
			}
		}
		names = append(names, name)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return false
		}
		if isNumericDateClaim([]byte(name)) && val[0] != '-' && (val[0] < '0' || val[0] > '9') {
			return false
		}
	}
	return true
}

func TestCheckStructureDoesNotAllocate(t *testing.T) {
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims(), "kid-1")
	if n := testing.AllocsPerRun(100, func() {
		if err := CheckStructure(tok); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("CheckStructure allocates %v times per token", n)
	}
}
