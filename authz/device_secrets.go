package authz

import (
	"fmt"
	"net/url"
	"strings"
)

// Device secrets on the API: the PTZ password and the password inside an
// rtsp:// source URL are never returned (issue 15 holes 5 and 12). Reads show
// redactedPassword in their place; a write that sends the placeholder back
// keeps the stored secret only while it would still go to the same place, so
// a devices:write admin cannot repoint a camera at its own host and have the
// gateway present the stored credentials there.

// redactedPassword replaces a stored password on reads.
const redactedPassword = "********"

// splitUserinfo splits an absolute URL into what precedes its userinfo
// ("rtsp://"), the raw userinfo (without '@') and the rest (host, path,
// query). ok is false when the URL has no userinfo. The authority ends at
// the first '/', '?' or '#', and its userinfo at the last '@', as url.Parse
// reads it.
func splitUserinfo(raw string) (prefix, userinfo, rest string, ok bool) {
	i := strings.Index(raw, "://")
	if i < 0 {
		return "", "", "", false
	}
	auth := raw[i+3:]
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	at := strings.LastIndexByte(auth, '@')
	if at < 0 {
		return "", "", "", false
	}
	return raw[:i+3], auth[:at], raw[i+3+at+1:], true
}

// redactSource returns source with the password of its userinfo replaced by
// redactedPassword (the user name stays, so an operator sees which account
// the gateway uses). Sources without a password are returned unchanged.
func redactSource(source string) string {
	prefix, userinfo, rest, ok := splitUserinfo(source)
	if !ok {
		return source
	}
	user, _, hasPass := strings.Cut(userinfo, ":")
	if !hasPass {
		return source
	}
	return prefix + user + ":" + redactedPassword + "@" + rest
}

// sourcePlace is where a source's credentials are presented: scheme, host
// (with port) and user name. The stored password follows it, nothing else.
func sourcePlace(source string) (place string, password string, hasPass bool) {
	u, err := url.Parse(source)
	if err != nil || u.User == nil {
		if err == nil {
			return strings.ToLower(u.Scheme + "://" + u.Host), "", false
		}
		return "", "", false
	}
	password, hasPass = u.User.Password()
	return strings.ToLower(u.Scheme+"://"+u.Host) + "\x00" + u.User.Username(), password, hasPass
}

// restoreSecrets puts the stored passwords back where d carries the redacted
// placeholder, and refuses the placeholder (or a missing PTZ password) when
// the place the secret would be sent to changed. old is nil on create.
func restoreSecrets(old, d *Device) error {
	if err := restoreSourcePassword(old, d); err != nil {
		return err
	}
	return restorePTZPassword(old, d)
}

func restoreSourcePassword(old, d *Device) error {
	place, pass, hasPass := sourcePlace(d.Source)
	if !hasPass || pass != redactedPassword {
		return nil
	}
	if old == nil {
		return fieldErr("source", "the password is the redacted placeholder "+redactedPassword+": send the camera's real password")
	}
	oldPlace, _, oldHasPass := sourcePlace(old.Source)
	if !oldHasPass {
		return fieldErr("source", "the password is the redacted placeholder "+redactedPassword+" but no password is stored: send the camera's real password")
	}
	if oldPlace != place {
		return fieldErr("source", "the password is required again when the source's scheme, host or user name changes; "+
			redactedPassword+" keeps the stored password only for the same host")
	}
	prefix, _, rest, _ := splitUserinfo(d.Source)
	_, oldUserinfo, _, _ := splitUserinfo(old.Source)
	d.Source = prefix + oldUserinfo + "@" + rest
	return nil
}

func restorePTZPassword(old, d *Device) error {
	if d.PTZ == nil {
		return nil
	}
	var stored *PTZConfig
	if old != nil && old.PTZ != nil && old.PTZ.Password != "" {
		stored = old.PTZ
	}
	if stored == nil {
		if d.PTZ.Password == redactedPassword {
			return fieldErr("ptz.password", "is the redacted placeholder "+redactedPassword+" but no password is stored: send the camera's real password")
		}
		return nil
	}
	var changed string
	switch {
	case d.PTZ.OnvifURL != stored.OnvifURL:
		changed = "onvif_url"
	case d.PTZ.Username != stored.Username:
		changed = "username"
	}
	switch {
	case changed != "" && (d.PTZ.Password == redactedPassword || d.PTZ.Password == ""):
		return fieldErr("ptz.password", fmt.Sprintf("required again when %s changes (%s or no password keeps the stored one only for the same onvif_url and username)",
			changed, redactedPassword))
	case d.PTZ.Password == redactedPassword:
		d.PTZ.Password = stored.Password
	}
	return nil
}
