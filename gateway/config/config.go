// Package config is camgate's typed configuration: defaults, then one YAML
// file, then CAMGATE_* environment variables, then Validate. Every error names
// the key it is about ("rtsp.listen: ..."), unknown keys and unknown CAMGATE_*
// variables are errors (a typo must not silently fall back to a default), and
// secrets are redacted whenever the configuration is printed.
//
// The YAML document is decoded by walking its node tree against the struct's
// yaml tags rather than with yaml.v3's Decoder.KnownFields: KnownFields names
// only the Go type of an unknown field, while the walk can name the full key
// path ("auth.viewer_jwt.isuer") and the line. Environment variable names are
// derived from the same yaml tags by reflection, so the two never drift.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config is the whole configuration of one camgate node.
type Config struct {
	// DataDir holds the embedded store and the archive. Default ./camgate-data.
	DataDir string `yaml:"data_dir"`
	// PublicURL is how viewers reach the HTTP server; share links are built on
	// it. Default http://localhost:8080.
	PublicURL string `yaml:"public_url"`
	// LogFormat is text or json. Default text.
	LogFormat string `yaml:"log_format"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`

	RTSP     RTSP     `yaml:"rtsp"`
	HTTP     HTTP     `yaml:"http"`
	TLS      TLS      `yaml:"tls"`
	WebRTC   WebRTC   `yaml:"webrtc"`
	Redis    Redis    `yaml:"redis"`
	Auth     Auth     `yaml:"auth"`
	Archive  Archive  `yaml:"archive"`
	Sessions Sessions `yaml:"sessions"`
	Limits   Limits   `yaml:"limits"`
	PTZ      PTZ      `yaml:"ptz"`
	Cluster  Cluster  `yaml:"cluster"`
	// Cameras bootstrap the device list; the API manages the rest.
	Cameras []Camera `yaml:"cameras"`
}

// RTSP configures the viewer-facing RTSP server.
type RTSP struct {
	// Listen is the TCP address. Default ":8554".
	Listen string `yaml:"listen"`
	// UDPRTPListen and UDPRTCPListen enable RTP/RTCP over UDP; both or neither,
	// the RTP port even and the RTCP port the next one. Defaults ":8000" and
	// ":8001"; "" disables UDP.
	UDPRTPListen  string `yaml:"udp_rtp_listen"`
	UDPRTCPListen string `yaml:"udp_rtcp_listen"`
	// RTSPSListen serves RTSP over TLS (rtsps://) with the tls certificate,
	// e.g. ":8322". Default "" (off).
	RTSPSListen string `yaml:"rtsps_listen"`
	// IdleTimeout closes a connection (RTSP or RTSPS) that sends no request
	// for this long while no session plays on it: before its first request
	// and between requests. Playing sessions are kept alive by their RTCP and
	// keepalives (timed out after 60 s without). Default 10s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConnsPerIP caps the open RTSP connections of one client address (of
	// an IPv6 client: its /64); beyond it new connections are closed at once.
	// Default 256; 0 = no cap.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// AuthMethods are the schemes a 401 challenges with: "basic" and/or
	// "digest" (MD5). Default [basic]. Digest is answered only by stream
	// credentials (a token cannot answer it) and clients offered both may
	// use Digest (ffmpeg does), so add it for NVRs that speak only Digest;
	// ?token= keeps working for every client.
	AuthMethods []string `yaml:"auth_methods"`
	// UpstreamUDPReadBuffer is the socket receive buffer, in bytes, of
	// each camera pulled over UDP (a camera's udp_read_buffer overrides
	// it). Default 0: the OS default (Linux: net.core.rmem_default, 208
	// KiB), which a 4K camera at 8 Mbit/s overflows at every keyframe. On
	// Linux more than net.core.rmem_max (often 208 KiB too) fails the
	// pull with a message saying so: raise that sysctl first, or use
	// `transport: tcp`.
	UpstreamUDPReadBuffer int `yaml:"upstream_udp_read_buffer"`
}

// WebRTC configures WHEP viewers' ICE transport.
type WebRTC struct {
	// UDPMuxListen carries all ICE traffic on one UDP port. Default ":8189";
	// "" uses an ephemeral port per viewer (bounded by port_min/port_max).
	UDPMuxListen string `yaml:"udp_mux_listen"`
	// PortMin and PortMax bound ephemeral ports when udp_mux_listen is "".
	PortMin int `yaml:"port_min"`
	PortMax int `yaml:"port_max"`
	// NAT1To1IPs are public IPs to announce for a node behind a 1:1 NAT.
	NAT1To1IPs []string `yaml:"nat1to1_ips"`
	// IncludeLoopback offers loopback candidates (a player on the same host).
	IncludeLoopback bool `yaml:"include_loopback"`
	// AllowOrigin is the CORS origin allowed to call /whep and to read /hls
	// (playlists, segments, errors). Default "*".
	AllowOrigin string `yaml:"allow_origin"`
}

// TLS names the node's certificate. With it, the HTTP server speaks HTTPS
// and rtsp.rtsps_listen may be used. Files are re-read on SIGHUP.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// HTTP configures the HTTP server (API, HLS, WHEP, archive, share links).
type HTTP struct {
	// Listen is the TCP address. Default ":8080".
	Listen string `yaml:"listen"`
	// MaxBodyBytes bounds request bodies. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Redis configures the shared store; an empty URL means a single node with
// the embedded store.
type Redis struct {
	// URL is redis://[user:password@]host:port/db or rediss://… for TLS;
	// Sentinel with ?master_name=…&addr=…, Cluster with ?addr=…&addr=… or
	// ?cluster=true (see docs/redis.md).
	URL string `yaml:"url"`
	// OutageGrace is how long open sessions continue on cached decisions
	// while Redis is unreachable. Default 5m.
	OutageGrace Duration `yaml:"outage_grace"`
}

// Cluster makes the nodes that share redis.url share the cameras too: each
// camera is pulled (and recorded) by one owning node, and the others serve
// their viewers from it over RTSP (docs/cluster.md).
type Cluster struct {
	// Enabled turns camera ownership on. Needs redis.url and secret.
	// Default false: every node pulls and records every camera itself.
	Enabled bool `yaml:"enabled"`
	// NodeID names this node, unique in the cluster. Default: the host
	// name and the RTSP port ("cam-gw-1-8554").
	NodeID string `yaml:"node_id"`
	// Advertise is the host:port of this node's RTSP server as the other
	// nodes reach it. Default: the RTSP listen address, 127.0.0.1 when it
	// names no host.
	Advertise string `yaml:"advertise"`
	// AdvertiseHTTP is the base URL of this node's HTTP front as the other
	// nodes reach it, to read the archive segments it holds. Default:
	// http:// (https:// with tls) and the HTTP listen address, 127.0.0.1
	// when it names no host.
	AdvertiseHTTP string `yaml:"advertise_http"`
	// Secret signs the tokens nodes pull cameras from each other with; the
	// same on every node, at least 32 characters.
	Secret string `yaml:"secret"`
	// LeaseTTL bounds how long a dead owner keeps its cameras. Default 5s.
	LeaseTTL Duration `yaml:"lease_ttl"`
}

// Auth configures how callers prove who they are.
type Auth struct {
	ViewerJWT ViewerJWT `yaml:"viewer_jwt"`
	// AdminKeys are bootstrap bearer keys for /api/v1.
	AdminKeys []string `yaml:"admin_keys"`
}

// ViewerJWT configures viewer token verification (package authz/token). None
// of the key sources is required: the demo generates an HS256 secret.
type ViewerJWT struct {
	// HS256Secret is a shared secret of at least 32 bytes.
	HS256Secret string `yaml:"hs256_secret"`
	// PublicKeys are PEM blocks (EdDSA, ES256 or RS256 public keys or
	// certificates), each given inline or as a path to a file holding it; see
	// PublicKeysPEM.
	PublicKeys []string `yaml:"public_keys"`
	// JWKSURL is fetched for keys selected by kid: https, or http to loopback.
	JWKSURL string `yaml:"jwks_url"`
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// Leeway is the allowed clock skew for exp and nbf. Default 30s, at most 5m.
	Leeway Duration `yaml:"leeway"`
}

// Archive configures recording retention and downloads.
type Archive struct {
	// Retention is how long segments are kept. Default 168h.
	Retention Duration `yaml:"retention"`
	// MaxDownload is the longest span one download may cover. Default 1h.
	MaxDownload Duration `yaml:"max_download"`
	// SegmentDuration is the length of recorded segments. Default 10s.
	SegmentDuration Duration `yaml:"segment_duration"`
	// MaxBytes is a disk budget for recordings (oldest deleted first); 0 = no budget.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Sessions configures the media session lifecycle.
type Sessions struct {
	// UpstreamLinger keeps an upstream open this long after its last viewer
	// leaves, so a quick reconnect does not re-dial the camera. Default 10s.
	UpstreamLinger Duration `yaml:"upstream_linger"`
	// GOPCache is "always" (default): every pulled camera keeps its latest
	// GOP, so a new viewer starts at once; or "viewers": only while it has
	// viewers (and a minute after), saving ~0.5 MiB per recorded camera
	// nobody watches, while that camera's next viewer waits for a keyframe
	// and its live snapshot for a viewer.
	GOPCache string `yaml:"gop_cache"`
	// AudioTranscode is "auto" (default): audio a protocol cannot carry is
	// transcoded, G.711 to AAC for HLS and AAC to Opus for WebRTC, with
	// one ffmpeg process per camera and protocol while it is watched with
	// sound (without ffmpeg on PATH, as "off"); or "off": such cameras are
	// served video-only and say so (HLS: X-Camgate-Audio-Dropped; WebRTC:
	// an inactive audio line and a log line).
	AudioTranscode string `yaml:"audio_transcode"`
}

// Limits protect the gateway from abusive or runaway clients.
type Limits struct {
	// MaxSessionsPerSubject caps one viewer's concurrent sessions on a node; 0 = no cap.
	MaxSessionsPerSubject int `yaml:"max_sessions_per_subject"`
	// MaxSessionsPerCamera caps one camera's concurrent viewers on a node; 0 = no cap.
	MaxSessionsPerCamera int `yaml:"max_sessions_per_camera"`
	// AuthFailuresPerMinute blocks a client IP (429) for the rest of the
	// minute after this many failed authentications. Default 30; 0 disables.
	AuthFailuresPerMinute int `yaml:"auth_failures_per_minute"`
}

// PTZ configures camera control.
type PTZ struct {
	// Timeout bounds each ONVIF request. Default 5s.
	Timeout Duration `yaml:"timeout"`
	// LeaseTTL frees a camera this long after its controller's last command. Default 5s.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// Priority lists controller kinds from highest to lowest; a higher one
	// takes the camera over. Default privacy_manager, company, installer, user.
	Priority []string `yaml:"priority"`
}

// Camera is one bootstrap camera.
type Camera struct {
	ID     string `yaml:"id"`
	Site   string `yaml:"site"`
	Name   string `yaml:"name"`
	Source string `yaml:"source"` // rtsp://…, rtsps://… or builtin:demo
	Record bool   `yaml:"record"`
	// Transport of the camera's RTSP media: auto (default: UDP, then TCP
	// when no UDP packet arrives within 3 s), tcp or udp. Pick tcp for a
	// camera whose loss the API reports (upstream.loss_warning).
	Transport string `yaml:"transport"`
	// UDPReadBuffer overrides rtsp.upstream_udp_read_buffer (bytes; 0 =
	// that setting).
	UDPReadBuffer int `yaml:"udp_read_buffer"`
}

// Default returns the configuration used when nothing else is given: a single
// node with the embedded store.
func Default() Config {
	return Config{
		DataDir:   "./camgate-data",
		PublicURL: "http://localhost:8080",
		LogFormat: "text",
		LogLevel:  "info",
		RTSP: RTSP{
			Listen:        ":8554",
			UDPRTPListen:  ":8000",
			UDPRTCPListen: ":8001",
			IdleTimeout:   Duration(10 * time.Second),
			MaxConnsPerIP: 256,
			AuthMethods:   []string{"basic"},
		},
		HTTP:     HTTP{Listen: ":8080", MaxBodyBytes: 1 << 20},
		Auth:     Auth{ViewerJWT: ViewerJWT{Leeway: Duration(30 * time.Second)}},
		Archive:  Archive{Retention: Duration(168 * time.Hour), MaxDownload: Duration(time.Hour), SegmentDuration: Duration(10 * time.Second)},
		Sessions: Sessions{UpstreamLinger: Duration(10 * time.Second), GOPCache: "always", AudioTranscode: "auto"},
		Limits:   Limits{AuthFailuresPerMinute: 30},
		PTZ:      PTZ{Timeout: Duration(5 * time.Second), LeaseTTL: Duration(5 * time.Second), Priority: []string{"privacy_manager", "company", "installer", "user"}},
		Redis:    Redis{OutageGrace: Duration(5 * time.Minute)},
		Cluster:  Cluster{LeaseTTL: Duration(5 * time.Second)},
		WebRTC:   WebRTC{UDPMuxListen: ":8189", AllowOrigin: "*"},
	}
}

// ErrUnknownKey is wrapped by errors about a YAML key or a CAMGATE_*
// environment variable that names no configuration key.
var ErrUnknownKey = errors.New("unknown key")

// FieldError is an error about one configuration key. Key is the dotted yaml
// path ("rtsp.listen", "cameras[2].id") or an environment variable name.
type FieldError struct {
	Key string
	Err error
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

func fieldErrorf(key, format string, args ...any) error {
	return &FieldError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Load builds the configuration: defaults, then the YAML file at path (none
// when path is ""), then CAMGATE_* variables from environ ("KEY=value", as
// os.Environ returns), then Validate.
func Load(path string, environ []string) (Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
	}
	cfg, err := Parse(data, environ)
	if err != nil && path != "" {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, err
}

// Parse is Load with the file's content given directly (nil or empty: no file).
func Parse(data []byte, environ []string) (Config, error) {
	cfg := Default()
	if err := decodeYAML(data, &cfg); err != nil {
		return Config{}, err
	}
	if err := applyEnv(environ, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// PublicKeysPEM returns the configured public keys as PEM text, in order: an
// entry starting with "-----BEGIN" is PEM already, any other is a file path
// and is read. Errors name the entry ("auth.viewer_jwt.public_keys[1]").
func (j ViewerJWT) PublicKeysPEM() ([]string, error) {
	out := make([]string, 0, len(j.PublicKeys))
	for i, k := range j.PublicKeys {
		k = strings.TrimSpace(k)
		if strings.HasPrefix(k, "-----BEGIN") {
			out = append(out, k)
			continue
		}
		b, err := os.ReadFile(k)
		if err != nil {
			return nil, &FieldError{Key: fmt.Sprintf("auth.viewer_jwt.public_keys[%d]", i), Err: err}
		}
		out = append(out, string(b))
	}
	return out, nil
}
