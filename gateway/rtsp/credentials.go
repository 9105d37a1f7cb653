package rtsp

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"github.com/camgate/camgate/gateway/creds"
	"github.com/camgate/camgate/gateway/session"
)

// presented is the credential an RTSP request carries, as parsed before any
// decision: a token (?token=, or a Basic password that is not a stream
// credential), a stream credential's Basic username and password, or a
// Digest answer (only stream credentials can answer Digest).
type presented struct {
	token                string
	basic                bool // sent with Basic (a token as the password, or a stream credential)
	basicUser, basicPass string
	digest               *headers.Authorization
}

// credentialFrom parses the request's credential with gortsplib's header
// parser. ?token= wins; a Basic user name of the stream-credential form
// with a password that is not a token (a JWT has dots) is a stream
// credential, any other Basic pair carries the token as the password.
func credentialFrom(req *base.Request, query string) presented {
	if q, err := url.ParseQuery(query); err == nil {
		if t := q.Get("token"); t != "" {
			return presented{token: t}
		}
	}
	h, ok := req.Header["Authorization"]
	if !ok {
		return presented{}
	}
	var a headers.Authorization
	if a.Unmarshal(h) != nil {
		return presented{}
	}
	switch {
	case a.Method == headers.AuthMethodDigest:
		return presented{digest: &a}
	case creds.LooksLikeUsername(a.Username) && !strings.Contains(a.BasicPass, "."):
		return presented{basic: true, basicUser: a.Username, basicPass: a.BasicPass}
	}
	return presented{basic: true, token: a.BasicPass}
}

// digestURIMatches checks a Digest answer's uri against the request URL the
// way gortsplib's own verifier does (its helper is not exported): the
// absolute URL or its path; on SETUP also the stream's base URL, which VLC
// and some NVRs send instead of the track's.
func digestURIMatches(expected *base.URL, received string, setup bool) bool {
	if expected == nil {
		return false
	}
	if (strings.HasPrefix(received, "/") && received == expected.RequestURI()) || received == expected.String() {
		return true
	}
	if setup {
		if m := reControlAttribute.FindStringSubmatch(expected.String()); m != nil && (received == m[1] || received+"/" == m[1]) {
			return true
		}
	}
	return false
}

var reControlAttribute = regexp.MustCompile("^(.+/)trackID=[0-9]+$")

// admitDigest checks what only the connection knows (its nonce, the
// request URL) and lets the credential admitter verify the answer.
func (s *Server) admitDigest(ctx context.Context, conn *gortsplib.ServerConn, req *base.Request, a *headers.Authorization, cam string) (session.Ticket, error) {
	mc, _ := conn.NetConn().(*mediaConn)
	switch {
	case s.Credentials == nil || mc == nil:
		return session.Ticket{Camera: cam}, fmt.Errorf("%w: Digest is only for stream credentials", session.ErrUnauthenticated)
	case a.Algorithm != nil && *a.Algorithm != headers.AuthAlgorithmMD5:
		return session.Ticket{Camera: cam}, fmt.Errorf("%w: only MD5 Digest is offered", session.ErrUnauthenticated)
	case !digestURIMatches(req.URL, a.URI, req.Method == base.Setup):
		return session.Ticket{Camera: cam}, fmt.Errorf("%w: Digest uri does not match the request", session.ErrUnauthenticated)
	}
	return s.Credentials.AdmitDigest(ctx, creds.Digest{
		Username: a.Username, Realm: a.Realm, Nonce: a.Nonce, URI: a.URI, Response: a.Response,
		Method: string(req.Method), ExpectedNonce: mc.nonce,
	}, cam)
}
