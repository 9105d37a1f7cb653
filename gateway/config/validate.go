package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/redisstore"
)

const (
	minHS256Secret = 32
	minAdminKey    = 16
	maxLeeway      = 5 * time.Minute
)

// Validate checks every key and returns all problems at once, each a
// *FieldError naming its key (errors.Join of them), or nil.
func (c Config) Validate() error {
	var errs []error
	add := func(key string, err error) {
		if err != nil {
			errs = append(errs, &FieldError{Key: key, Err: err})
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		add("data_dir", errors.New("must not be empty"))
	}
	add("public_url", checkHTTPURL(c.PublicURL, false))
	add("log_format", checkOneOf(c.LogFormat, "text", "json"))
	add("log_level", checkOneOf(c.LogLevel, "debug", "info", "warn", "error"))

	add("rtsp.listen", checkListen(c.RTSP.Listen))
	errs = append(errs, c.RTSP.validateUDP()...)
	add("rtsp.idle_timeout", checkPositive(c.RTSP.IdleTimeout))
	if len(c.RTSP.AuthMethods) == 0 {
		add("rtsp.auth_methods", errors.New("must name basic, digest or both"))
	}
	for i, m := range c.RTSP.AuthMethods {
		add(fmt.Sprintf("rtsp.auth_methods[%d]", i), checkOneOf(m, "basic", "digest"))
	}
	add("http.listen", checkListen(c.HTTP.Listen))
	add("ptz.timeout", checkPositive(c.PTZ.Timeout))
	add("ptz.lease_ttl", checkPositive(c.PTZ.LeaseTTL))
	seenKind := map[string]bool{}
	for i, k := range c.PTZ.Priority {
		switch k {
		case "admin", "privacy_manager", "company", "employee", "installer", "integrator", "user", "link":
		default:
			add(fmt.Sprintf("ptz.priority[%d]", i), fmt.Errorf("%q is not a controller kind (admin, privacy_manager, company, employee, installer, integrator, user, link)", k))
		}
		if seenKind[k] {
			add(fmt.Sprintf("ptz.priority[%d]", i), fmt.Errorf("%q is listed twice", k))
		}
		seenKind[k] = true
	}
	if c.WebRTC.UDPMuxListen != "" {
		add("webrtc.udp_mux_listen", checkListen(c.WebRTC.UDPMuxListen))
	}
	for key, v := range map[string]int{"webrtc.port_min": c.WebRTC.PortMin, "webrtc.port_max": c.WebRTC.PortMax} {
		if v < 0 || v > 65535 {
			add(key, errors.New("must be a port number (0-65535)"))
		}
	}
	if c.WebRTC.PortMin > c.WebRTC.PortMax {
		add("webrtc.port_min", errors.New("must not exceed webrtc.port_max"))
	}
	for i, ip := range c.WebRTC.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			add(fmt.Sprintf("webrtc.nat1to1_ips[%d]", i), fmt.Errorf("%q is not an IP address", ip))
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", errors.New("cert_file and key_file go together"))
	}
	if c.RTSP.RTSPSListen != "" {
		add("rtsp.rtsps_listen", checkListen(c.RTSP.RTSPSListen))
		if c.TLS.CertFile == "" {
			add("rtsp.rtsps_listen", errors.New("needs tls.cert_file and tls.key_file"))
		}
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		add("http.max_body_bytes", fmt.Errorf("must be positive, got %d", c.HTTP.MaxBodyBytes))
	}
	if c.Sessions.GOPCache != "always" && c.Sessions.GOPCache != "viewers" {
		add("sessions.gop_cache", fmt.Errorf("%q: want always or viewers", c.Sessions.GOPCache))
	}
	add("sessions.audio_transcode", checkOneOf(c.Sessions.AudioTranscode, "auto", "off"))
	add("redis.url", checkRedisURL(c.Redis.URL))
	add("redis.outage_grace", checkPositive(c.Redis.OutageGrace))
	if c.Cluster.Enabled {
		if c.Redis.URL == "" {
			add("cluster.enabled", errors.New("needs redis.url: the nodes agree on camera owners there"))
		}
		if len(c.Cluster.Secret) < 32 {
			add("cluster.secret", fmt.Errorf("must be at least 32 characters (got %d), the same on every node", len(c.Cluster.Secret)))
		}
		if c.Cluster.NodeID != "" && !authz.ValidID(c.Cluster.NodeID) {
			add("cluster.node_id", fmt.Errorf("%q is not a valid id (letters, digits, '-', '_')", c.Cluster.NodeID))
		}
		if c.Cluster.Advertise != "" {
			if host, port, err := net.SplitHostPort(c.Cluster.Advertise); err != nil || host == "" || port == "" {
				add("cluster.advertise", fmt.Errorf("%q: want host:port of this node's RTSP server", c.Cluster.Advertise))
			}
		}
		if a := c.Cluster.AdvertiseHTTP; a != "" {
			if u, err := url.Parse(a); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				add("cluster.advertise_http", fmt.Errorf("%q: want the base URL of this node's HTTP front (http://10.0.0.21:8080)", a))
			}
		}
		add("cluster.lease_ttl", checkPositive(c.Cluster.LeaseTTL))
	}

	errs = append(errs, c.Auth.validate()...)

	add("archive.retention", checkPositive(c.Archive.Retention))
	add("archive.max_download", checkPositive(c.Archive.MaxDownload))
	add("archive.segment_duration", checkPositive(c.Archive.SegmentDuration))
	for key, v := range map[string]int{
		"limits.max_sessions_per_subject": c.Limits.MaxSessionsPerSubject,
		"limits.max_sessions_per_camera":  c.Limits.MaxSessionsPerCamera,
		"limits.auth_failures_per_minute": c.Limits.AuthFailuresPerMinute,
		"rtsp.max_conns_per_ip":           c.RTSP.MaxConnsPerIP,
	} {
		if v < 0 {
			add(key, errors.New("must not be negative"))
		}
	}
	if _, problem := authz.CheckTransport("", c.RTSP.UpstreamUDPReadBuffer); problem != "" {
		add("rtsp.upstream_udp_read_buffer", errors.New(problem))
	}
	if c.Archive.MaxBytes < 0 {
		add("archive.max_bytes", errors.New("must not be negative"))
	}
	add("sessions.upstream_linger", checkPositive(c.Sessions.UpstreamLinger))

	errs = append(errs, validateCameras(c.Cameras)...)
	return errors.Join(errs...)
}

func (r RTSP) validateUDP() []error {
	if r.UDPRTPListen == "" && r.UDPRTCPListen == "" {
		return nil
	}
	if r.UDPRTPListen == "" || r.UDPRTCPListen == "" {
		return []error{fieldErrorf("rtsp.udp_rtp_listen", "udp_rtp_listen and udp_rtcp_listen must be set together (both empty disables UDP)")}
	}
	var errs []error
	if err := checkListen(r.UDPRTPListen); err != nil {
		errs = append(errs, &FieldError{Key: "rtsp.udp_rtp_listen", Err: err})
	}
	if err := checkListen(r.UDPRTCPListen); err != nil {
		errs = append(errs, &FieldError{Key: "rtsp.udp_rtcp_listen", Err: err})
	}
	if errs != nil {
		return errs
	}
	// RTSP clients derive the RTCP port from the RTP one (RFC 3550 §11).
	rtpPort, _ := listenPort(r.UDPRTPListen)
	rtcpPort, _ := listenPort(r.UDPRTCPListen)
	if rtpPort%2 != 0 {
		errs = append(errs, fieldErrorf("rtsp.udp_rtp_listen", "port %d must be even", rtpPort))
	}
	if rtcpPort != rtpPort+1 {
		errs = append(errs, fieldErrorf("rtsp.udp_rtcp_listen", "port %d must be the RTP port plus one (%d)", rtcpPort, rtpPort+1))
	}
	return errs
}

func (a Auth) validate() []error {
	var errs []error
	j := a.ViewerJWT
	if j.HS256Secret != "" && len(j.HS256Secret) < minHS256Secret {
		errs = append(errs, fieldErrorf("auth.viewer_jwt.hs256_secret", "must be at least %d bytes, got %d", minHS256Secret, len(j.HS256Secret)))
	}
	for i, k := range j.PublicKeys {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, fieldErrorf(fmt.Sprintf("auth.viewer_jwt.public_keys[%d]", i), "must be a PEM block or a file path, got nothing"))
		}
	}
	if j.JWKSURL != "" {
		if err := checkHTTPURL(j.JWKSURL, true); err != nil {
			errs = append(errs, &FieldError{Key: "auth.viewer_jwt.jwks_url", Err: err})
		}
	}
	if err := checkPositive(j.Leeway); err != nil {
		errs = append(errs, &FieldError{Key: "auth.viewer_jwt.leeway", Err: err})
	} else if j.Leeway.D() > maxLeeway {
		errs = append(errs, fieldErrorf("auth.viewer_jwt.leeway", "%s is more than the maximum %s", j.Leeway, Duration(maxLeeway)))
	}
	seen := make(map[string]int, len(a.AdminKeys))
	for i, k := range a.AdminKeys {
		key := fmt.Sprintf("auth.admin_keys[%d]", i)
		switch {
		case len(k) < minAdminKey:
			errs = append(errs, fieldErrorf(key, "must be at least %d bytes, got %d", minAdminKey, len(k)))
		case strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			errs = append(errs, fieldErrorf(key, "must not contain spaces or control characters"))
		}
		if j, dup := seen[k]; dup {
			errs = append(errs, fieldErrorf(key, "same key as auth.admin_keys[%d]", j))
		}
		seen[k] = i
	}
	return errs
}

func validateCameras(cams []Camera) []error {
	var errs []error
	seen := make(map[string]int, len(cams))
	for i, cam := range cams {
		p := fmt.Sprintf("cameras[%d]", i)
		if !authz.ValidID(cam.ID) { // the API's rule: safe in URLs, file names and Redis keys
			errs = append(errs, fieldErrorf(p+".id", "%q is not a valid id (1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit, no \"..\", not ending in \".\")", cam.ID))
		} else if j, dup := seen[cam.ID]; dup {
			errs = append(errs, fieldErrorf(p+".id", "%q is already used by cameras[%d]", cam.ID, j))
		} else {
			seen[cam.ID] = i
		}
		if cam.Site != "" && !authz.ValidID(cam.Site) {
			errs = append(errs, fieldErrorf(p+".site", "%q is not a valid id", cam.Site))
		}
		if err := checkSource(cam.Source); err != nil {
			errs = append(errs, &FieldError{Key: p + ".source", Err: err})
		}
		if field, problem := authz.CheckTransport(cam.Transport, cam.UDPReadBuffer); field != "" {
			errs = append(errs, fieldErrorf(p+"."+field, "%s", problem))
		}
	}
	return errs
}

// checkSource allows only what the source package can pull; file:// and
// friends would let a config (or, later, the API) read local files.
func checkSource(s string) error {
	if s == "builtin:demo" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") {
		return fmt.Errorf("%q must be rtsp://…, rtsps://… or builtin:demo", redactURLString(s))
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q has no host", redactURLString(s))
	}
	return nil
}

func checkOneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%q must be one of %s", v, strings.Join(allowed, ", "))
}

func checkPositive(d Duration) error {
	if d <= 0 {
		return fmt.Errorf("must be a positive duration, got %s", d)
	}
	return nil
}

// checkListen requires host:port with a numeric port; the host may be empty
// (all interfaces) but must otherwise be an IP or a name.
func checkListen(addr string) error {
	if addr == "" {
		return errors.New("must not be empty (want host:port, e.g. :8554)")
	}
	if _, err := listenPort(addr); err != nil {
		return err
	}
	return nil
}

func listenPort(addr string) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("%q is not host:port: %w", addr, unwrapAddrErr(err))
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if strings.ContainsAny(host, " /?#@") {
		return 0, fmt.Errorf("%q: invalid host %q", addr, host)
	}
	return int(n), nil
}

func unwrapAddrErr(err error) error {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return errors.New(ae.Err)
	}
	return err
}

// checkHTTPURL requires an absolute http(s) URL. With strictTLS, plain http is
// accepted only to a loopback host: keys fetched over plain http could be
// swapped by anyone on the path.
func checkHTTPURL(s string, strictTLS bool) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q must be an absolute http:// or https:// URL", redactURLString(s))
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q must not have a #fragment", redactURLString(s))
	}
	if strictTLS && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q must use https (plain http only to localhost)", redactURLString(s))
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func checkRedisURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return fmt.Errorf("%q must be redis://host:port/db or rediss://…", redactURLString(s))
	}
	// The same parser the gateway connects with (standalone, Sentinel,
	// Cluster); it builds no client.
	if _, err := redisstore.ParseURL(s); err != nil {
		// go-redis errors quote parts of the URL, never the password alone,
		// but the whole message is rebuilt to be sure.
		return fmt.Errorf("%q is not a valid Redis URL: %s", redactURLString(s), strings.ReplaceAll(err.Error(), s, redactURLString(s)))
	}
	return nil
}
