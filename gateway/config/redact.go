package config

import (
	"net/url"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// RedactedMark is what replaces a secret when the configuration is printed.
const RedactedMark = "REDACTED"

// Redacted returns a copy of c with every secret replaced by "REDACTED": the
// HS256 secret, the admin keys, and the password of any URL (Redis, camera
// sources, JWKS, public URL). c itself is not modified.
func (c Config) Redacted() Config {
	r := c
	if r.Auth.ViewerJWT.HS256Secret != "" {
		r.Auth.ViewerJWT.HS256Secret = RedactedMark
	}
	r.Auth.ViewerJWT.PublicKeys = slices.Clone(c.Auth.ViewerJWT.PublicKeys)
	if c.Auth.AdminKeys != nil {
		r.Auth.AdminKeys = make([]string, len(c.Auth.AdminKeys))
		for i := range r.Auth.AdminKeys {
			r.Auth.AdminKeys[i] = RedactedMark
		}
	}
	r.Redis.URL = redactURLString(c.Redis.URL)
	if r.Cluster.Secret != "" {
		r.Cluster.Secret = RedactedMark
	}
	r.PublicURL = redactURLString(c.PublicURL)
	r.Auth.ViewerJWT.JWKSURL = redactURLString(c.Auth.ViewerJWT.JWKSURL)
	r.Cameras = slices.Clone(c.Cameras)
	for i := range r.Cameras {
		r.Cameras[i].Source = redactURLString(r.Cameras[i].Source)
	}
	return r
}

// String is the YAML form of Redacted(), safe to log or print.
func (c Config) String() string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c.Redacted()); err != nil {
		return "# config cannot be printed: " + err.Error()
	}
	if err := enc.Close(); err != nil {
		return "# config cannot be printed: " + err.Error()
	}
	return b.String()
}

// redactURLString replaces the password of a URL's userinfo. Something that
// looks like it has userinfo but does not parse is replaced whole: better an
// unreadable log line than a leaked password.
func redactURLString(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return RedactedMark
	}
	if u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	u.User = url.UserPassword(u.User.Username(), RedactedMark)
	return u.String()
}
