package ptz

import (
	"crypto/md5" //nolint:gosec // HTTP Digest (RFC 7616) MD5 is what cameras speak
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strings"
)

// challenge is one parsed WWW-Authenticate challenge.
type challenge struct {
	scheme string            // "basic" or "digest", lower case
	params map[string]string // keys lower case
}

// maxChallengeBytes bounds the header a camera may send us to parse.
const maxChallengeBytes = 4096

// parseChallenge reads one WWW-Authenticate value: a scheme, then
// comma-separated key=value or key="quoted value" pairs. It is lenient in
// what it skips but never reads past the header; ok is false when there is
// no scheme.
func parseChallenge(h string) (challenge, bool) {
	if len(h) > maxChallengeBytes {
		return challenge{}, false
	}
	h = strings.TrimSpace(h)
	sp := strings.IndexAny(h, " \t")
	scheme := h
	rest := ""
	if sp >= 0 {
		scheme, rest = h[:sp], h[sp+1:]
	}
	if scheme == "" {
		return challenge{}, false
	}
	c := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t,")
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			break
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			val = b.String()
			rest = rest[min(i+1, len(rest)):]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val = strings.TrimSpace(rest[:end])
			rest = rest[end:]
		}
		c.params[key] = val
	}
	return c, true
}

// authorization answers the strongest challenge offered (Digest over
// Basic); "" when none is usable.
func authorization(challenges []string, user, pass, method, uri string) string {
	var basic bool
	for _, h := range challenges {
		c, ok := parseChallenge(h)
		if !ok {
			continue
		}
		switch c.scheme {
		case "digest":
			if a := digest(c, user, pass, method, uri); a != "" {
				return a
			}
		case "basic":
			basic = true
		}
	}
	if basic {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	return ""
}

// digest computes an RFC 7616 Digest answer (MD5 or SHA-256, qop=auth or
// none).
func digest(c challenge, user, pass, method, uri string) string {
	realm, nonce := c.params["realm"], c.params["nonce"]
	if nonce == "" {
		return ""
	}
	algo := c.params["algorithm"]
	var newHash func() hash.Hash
	switch strings.ToUpper(algo) {
	case "":
		newHash = md5.New
	case "MD5":
		newHash, algo = md5.New, "MD5"
	case "SHA-256":
		newHash, algo = sha256.New, "SHA-256"
	default:
		return ""
	}
	h := func(s string) string {
		d := newHash()
		d.Write([]byte(s))
		return hex.EncodeToString(d.Sum(nil))
	}
	ha1 := h(user + ":" + realm + ":" + pass)
	ha2 := h(method + ":" + uri)
	qop := ""
	for _, q := range strings.Split(c.params["qop"], ",") {
		if strings.TrimSpace(q) == "auth" {
			qop = "auth"
		}
	}
	if c.params["qop"] != "" && qop == "" {
		return "" // only auth-int offered
	}
	var b strings.Builder
	b.WriteString(`Digest username=` + quote(user) + `, realm=` + quote(realm) + `, nonce=` + quote(nonce) + `, uri=` + quote(uri))
	if algo != "" {
		b.WriteString(`, algorithm=` + algo)
	}
	if qop == "" {
		b.WriteString(`, response="` + h(ha1+":"+nonce+":"+ha2) + `"`)
	} else {
		var raw [12]byte
		_, _ = rand.Read(raw[:])
		cnonce := hex.EncodeToString(raw[:])
		const nc = "00000001"
		b.WriteString(`, qop=auth, nc=` + nc + `, cnonce="` + cnonce + `", response="` + h(ha1+":"+nonce+":"+nc+":"+cnonce+":auth:"+ha2) + `"`)
	}
	if o, ok := c.params["opaque"]; ok {
		b.WriteString(`, opaque=` + quote(o))
	}
	return b.String()
}

// quote makes a quoted-string, escaping what must be escaped and dropping
// control characters (a camera's realm must not split our header).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '"' || ch == '\\':
			b.WriteByte('\\')
			b.WriteByte(ch)
		case ch < 0x20 || ch == 0x7f:
		default:
			b.WriteByte(ch)
		}
	}
	b.WriteByte('"')
	return b.String()
}
