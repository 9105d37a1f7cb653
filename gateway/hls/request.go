package hls

import (
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/internal/httpjson"
)

// Errors of request parsing; each wraps the generic kind that the HTTP
// front's one mapping (httpapi.StatusOf) answers.
var (
	// ErrBadRequest: a malformed session id, query parameter or file name (400).
	ErrBadRequest = fmt.Errorf("hls: %w", httpjson.ErrBadRequest)
	// ErrUnknownFile: a file name the muxer never serves (404).
	ErrUnknownFile = fmt.Errorf("unknown file: %w", httpjson.ErrNotFound)
	// ErrUnknownSession: no HLS session with that id (never existed, or
	// expired): the player must exchange its token again (401).
	ErrUnknownSession = fmt.Errorf("unknown or expired HLS session: %w", session.ErrUnauthenticated)
)

// fileKind is what a request asks for; it decides whether the muxer may
// block on it (playlists and parts) or answers at once (init, segments).
type fileKind int

const (
	kindIndex    fileKind = iota + 1 // index.m3u8: multivariant playlist, the token exchange
	kindPlaylist                     // {stream}_stream.m3u8: media playlist, may block (LL-HLS)
	kindInit                         // {prefix}_{stream}_init.mp4
	kindSegment                      // {prefix}_{stream}_seg{N}.mp4
	kindPart                         // {prefix}_{stream}_part{N}.mp4: may block (preload hint)
)

// blocking reports whether gohlslib may hold the request until the muxer
// advances.
func (k fileKind) blocking() bool { return k == kindIndex || k == kindPlaylist || k == kindPart }

// media reports whether the file is media whose bytes never change once
// served (so it may be cached).
func (k fileKind) media() bool { return k == kindInit || k == kindSegment || k == kindPart }

const (
	maxFileLen  = 96
	maxTokenLen = 8 << 10
	// sessionIDLen is 128 random bits in lowercase hex.
	sessionIDLen = 32
	// cookieName carries the session id for players that keep cookies.
	cookieName = "camgate_hls"
)

// classifyFile maps a file name to its kind. Names are those gohlslib
// generates: index.m3u8, video1_stream.m3u8, 3f2a…_video1_seg7.mp4, …
func classifyFile(name string) (fileKind, error) {
	if name == "index.m3u8" {
		return kindIndex, nil
	}
	if name == "" || len(name) > maxFileLen {
		return 0, fmt.Errorf("%w: file name", ErrUnknownFile)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return 0, fmt.Errorf("%w: file name", ErrUnknownFile)
		}
	}
	if stem, ok := strings.CutSuffix(name, "_stream.m3u8"); ok && stem != "" && !strings.ContainsAny(stem, "._") {
		return kindPlaylist, nil
	}
	stem, ok := strings.CutSuffix(name, ".mp4")
	if !ok || strings.Contains(stem, ".") {
		return 0, fmt.Errorf("%w: file name", ErrUnknownFile)
	}
	last := strings.LastIndexByte(stem, '_')
	if last <= 0 {
		return 0, fmt.Errorf("%w: file name", ErrUnknownFile)
	}
	switch tail := stem[last+1:]; {
	case tail == "init":
		return kindInit, nil
	case strings.HasPrefix(tail, "seg") && isDigits(tail[3:]):
		return kindSegment, nil
	case strings.HasPrefix(tail, "part") && isDigits(tail[4:]):
		return kindPart, nil
	}
	return 0, fmt.Errorf("%w: file name", ErrUnknownFile)
}

func isDigits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validCamera accepts the camera ids a URL path segment can carry safely
// (they also go into the cookie's Path).
func validCamera(c string) bool {
	if c == "" || len(c) > 128 || c[0] == '.' {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-' || ch == '.') {
			return false
		}
	}
	return true
}

// validSessionID reports whether b looks like an id newSessionID made.
func validSessionID(b []byte) bool {
	if len(b) != sessionIDLen {
		return false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// query is the validated query of a request. Byte slices point into the
// request and are valid only during the handler.
type query struct {
	token   []byte
	session []byte
	// LL-HLS blocking-reload parameters, passed on to the muxer.
	msn, part, skip []byte
}

// parseQuery validates the parameters camgate and LL-HLS define; other
// parameters (cache busters) are ignored and not passed on. A parameter given
// twice is an error: which one would count is ambiguous.
func parseQuery(args *fasthttp.Args) (query, error) {
	var q query
	var seen [5]bool
	for k, v := range args.All() {
		var slot int
		switch string(k) {
		case "token":
			slot = 0
			if len(v) == 0 || len(v) > maxTokenLen {
				return q, fmt.Errorf("%w: token", ErrBadRequest)
			}
			q.token = v
		case "session":
			slot = 1
			if !validSessionID(v) {
				return q, fmt.Errorf("%w: session must be %d hex digits", ErrBadRequest, sessionIDLen)
			}
			q.session = v
		case "_HLS_msn":
			slot = 2
			if !isDigits(string(v)) {
				return q, fmt.Errorf("%w: _HLS_msn", ErrBadRequest)
			}
			q.msn = v
		case "_HLS_part":
			slot = 3
			if !isDigits(string(v)) {
				return q, fmt.Errorf("%w: _HLS_part", ErrBadRequest)
			}
			q.part = v
		case "_HLS_skip":
			slot = 4
			if string(v) != "YES" && string(v) != "v2" {
				return q, fmt.Errorf("%w: _HLS_skip", ErrBadRequest)
			}
			q.skip = v
		default:
			continue
		}
		if seen[slot] {
			return q, fmt.Errorf("%w: %s given twice", ErrBadRequest, k)
		}
		seen[slot] = true
	}
	if q.part != nil && q.msn == nil {
		return q, fmt.Errorf("%w: _HLS_part without _HLS_msn", ErrBadRequest)
	}
	return q, nil
}

// muxerQuery is the query the muxer sees: gohlslib appends it to every URL
// of the playlists it generates, which is how the session id rides along.
// The token never does.
func (q *query) muxerQuery(sessionID string, kind fileKind) string {
	var b strings.Builder
	b.Grow(64)
	b.WriteString("session=")
	b.WriteString(sessionID)
	if kind == kindPlaylist {
		for _, p := range [...]struct {
			k string
			v []byte
		}{{"_HLS_msn", q.msn}, {"_HLS_part", q.part}, {"_HLS_skip", q.skip}} {
			if p.v != nil {
				b.WriteString("&" + p.k + "=")
				b.Write(p.v)
			}
		}
	}
	return b.String()
}
