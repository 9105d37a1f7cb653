package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantKey string // "" means valid
		wantMsg string
	}{
		{name: "defaults", mutate: func(*Config) {}},
		{name: "ephemeral ports and no UDP", mutate: func(c *Config) {
			c.RTSP.Listen, c.HTTP.Listen = "127.0.0.1:0", "[::1]:0"
			c.RTSP.UDPRTPListen, c.RTSP.UDPRTCPListen = "", ""
		}},
		{name: "full", mutate: func(c *Config) {
			c.PublicURL = "https://cams.example.com/prefix"
			c.LogFormat, c.LogLevel = "json", "debug"
			c.Redis.URL = "rediss://user:pw@redis.internal:6380/3"
			c.Auth.ViewerJWT = ViewerJWT{HS256Secret: secret32, PublicKeys: []string{"/etc/k.pem"}, JWKSURL: "https://idp.example.com/jwks.json", Issuer: "i", Audience: "a", Leeway: Duration(time.Second)}
			c.Auth.AdminKeys = []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"}
			c.Cameras = []Camera{{ID: "cam-1.a_b", Site: "hq", Source: "rtsps://cam.local:322/s"}, {ID: "demo", Source: "builtin:demo"}}
		}},
		{name: "jwks over http to loopback", mutate: func(c *Config) { c.Auth.ViewerJWT.JWKSURL = "http://127.0.0.1:9000/jwks" }},

		{name: "empty data_dir", mutate: func(c *Config) { c.DataDir = " " }, wantKey: "data_dir", wantMsg: "must not be empty"},
		{name: "relative public_url", mutate: func(c *Config) { c.PublicURL = "cams.example.com" }, wantKey: "public_url", wantMsg: "absolute http"},
		{name: "ftp public_url", mutate: func(c *Config) { c.PublicURL = "ftp://x" }, wantKey: "public_url", wantMsg: "absolute http"},
		{name: "log_format", mutate: func(c *Config) { c.LogFormat = "logfmt" }, wantKey: "log_format", wantMsg: "one of text, json"},
		{name: "log_level", mutate: func(c *Config) { c.LogLevel = "trace" }, wantKey: "log_level", wantMsg: "one of debug"},
		{name: "rtsp.listen empty", mutate: func(c *Config) { c.RTSP.Listen = "" }, wantKey: "rtsp.listen", wantMsg: "must not be empty"},
		{name: "rtsp.listen no port", mutate: func(c *Config) { c.RTSP.Listen = "8554" }, wantKey: "rtsp.listen", wantMsg: "not host:port"},
		{name: "http.listen port range", mutate: func(c *Config) { c.HTTP.Listen = ":70000" }, wantKey: "http.listen", wantMsg: "0 to 65535"},
		{name: "http.listen named port", mutate: func(c *Config) { c.HTTP.Listen = ":http" }, wantKey: "http.listen", wantMsg: "not a number"},
		{name: "udp half set", mutate: func(c *Config) { c.RTSP.UDPRTCPListen = "" }, wantKey: "rtsp.udp_rtp_listen", wantMsg: "set together"},
		{name: "udp odd rtp", mutate: func(c *Config) { c.RTSP.UDPRTPListen, c.RTSP.UDPRTCPListen = ":8001", ":8002" }, wantKey: "rtsp.udp_rtp_listen", wantMsg: "must be even"},
		{name: "udp rtcp not next", mutate: func(c *Config) { c.RTSP.UDPRTCPListen = ":9001" }, wantKey: "rtsp.udp_rtcp_listen", wantMsg: "plus one"},
		{name: "rtsp idle timeout zero", mutate: func(c *Config) { c.RTSP.IdleTimeout = 0 }, wantKey: "rtsp.idle_timeout", wantMsg: "positive duration"},
		{name: "rtsp idle timeout negative", mutate: func(c *Config) { c.RTSP.IdleTimeout = Duration(-time.Second) }, wantKey: "rtsp.idle_timeout", wantMsg: "positive duration"},
		{name: "rtsp auth method", mutate: func(c *Config) { c.RTSP.AuthMethods = []string{"basic", "ntlm"} }, wantKey: "rtsp.auth_methods[1]", wantMsg: "ntlm"},
		{name: "rtsp no auth method", mutate: func(c *Config) { c.RTSP.AuthMethods = nil }, wantKey: "rtsp.auth_methods", wantMsg: "basic, digest or both"},
		{name: "rtsp conn cap negative", mutate: func(c *Config) { c.RTSP.MaxConnsPerIP = -1 }, wantKey: "rtsp.max_conns_per_ip", wantMsg: "must not be negative"},
		{name: "rtsp conn cap off", mutate: func(c *Config) { c.RTSP.MaxConnsPerIP = 0 }},
		{name: "camera transports", mutate: func(c *Config) {
			c.Cameras = []Camera{{ID: "a", Source: "builtin:demo", Transport: "tcp"}, {ID: "b", Source: "builtin:demo", Transport: "auto", UDPReadBuffer: 4 << 20}, {ID: "c", Source: "builtin:demo", Transport: "udp"}}
			c.RTSP.UpstreamUDPReadBuffer = 1 << 20
		}},
		{name: "camera transport unknown", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "a", Source: "builtin:demo", Transport: "UDP-multicast"}} },
			wantKey: "cameras[0].transport", wantMsg: "want auto, tcp or udp"},
		{name: "camera udp buffer negative", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "a", Source: "builtin:demo", UDPReadBuffer: -1}} },
			wantKey: "cameras[0].udp_read_buffer", wantMsg: "want 0 to"},
		{name: "upstream udp buffer too big", mutate: func(c *Config) { c.RTSP.UpstreamUDPReadBuffer = 1 << 30 }, wantKey: "rtsp.upstream_udp_read_buffer", wantMsg: "want 0 to 67108864"},
		{name: "udp bad addr", mutate: func(c *Config) { c.RTSP.UDPRTCPListen = "x" }, wantKey: "rtsp.udp_rtcp_listen", wantMsg: "not host:port"},
		{name: "max_body_bytes", mutate: func(c *Config) { c.HTTP.MaxBodyBytes = 0 }, wantKey: "http.max_body_bytes", wantMsg: "positive"},
		{name: "redis sentinel url", mutate: func(c *Config) {
			c.Redis.URL = "redis://127.0.0.1:26379/0?master_name=mymaster&addr=127.0.0.1:26380&addr=127.0.0.1:26381"
		}},
		{name: "redis cluster url", mutate: func(c *Config) { c.Redis.URL = "redis://127.0.0.1:7000?addr=127.0.0.1:7001" }},
		{name: "redis scheme", mutate: func(c *Config) { c.Redis.URL = "http://127.0.0.1:6379" }, wantKey: "redis.url", wantMsg: "redis://"},
		{name: "redis unix", mutate: func(c *Config) { c.Redis.URL = "unix:///tmp/redis.sock" }, wantKey: "redis.url", wantMsg: "redis://"},
		{name: "redis db", mutate: func(c *Config) { c.Redis.URL = "redis://127.0.0.1:6379/abc" }, wantKey: "redis.url", wantMsg: "database number"},
		{name: "cluster without redis", mutate: func(c *Config) {
			c.Cluster = Cluster{Enabled: true, Secret: strings.Repeat("s", 32), LeaseTTL: c.Cluster.LeaseTTL}
		}, wantKey: "cluster.enabled", wantMsg: "redis.url"},
		{name: "cluster short secret", mutate: func(c *Config) {
			c.Redis.URL, c.Cluster.Enabled, c.Cluster.Secret = "redis://127.0.0.1:6379/0", true, "short"
		}, wantKey: "cluster.secret", wantMsg: "32"},
		{name: "cluster node id", mutate: func(c *Config) {
			c.Redis.URL, c.Cluster.Enabled, c.Cluster.Secret, c.Cluster.NodeID = "redis://127.0.0.1:6379/0", true, strings.Repeat("s", 32), "a/b"
		}, wantKey: "cluster.node_id", wantMsg: "valid id"},
		{name: "cluster advertise", mutate: func(c *Config) {
			c.Redis.URL, c.Cluster.Enabled, c.Cluster.Secret, c.Cluster.Advertise = "redis://127.0.0.1:6379/0", true, strings.Repeat("s", 32), ":8554"
		}, wantKey: "cluster.advertise", wantMsg: "host:port"},
		{name: "cluster advertise http", mutate: func(c *Config) {
			c.Redis.URL, c.Cluster.Enabled, c.Cluster.Secret, c.Cluster.AdvertiseHTTP = "redis://127.0.0.1:6379/0", true, strings.Repeat("s", 32), "10.0.0.21:8080"
		}, wantKey: "cluster.advertise_http", wantMsg: "base URL"},
		{name: "short secret", mutate: func(c *Config) { c.Auth.ViewerJWT.HS256Secret = "short" }, wantKey: "auth.viewer_jwt.hs256_secret", wantMsg: "at least 32 bytes, got 5"},
		{name: "blank public key", mutate: func(c *Config) { c.Auth.ViewerJWT.PublicKeys = []string{"/k", " "} }, wantKey: "auth.viewer_jwt.public_keys[1]", wantMsg: "PEM block or a file path"},
		{name: "jwks not a url", mutate: func(c *Config) { c.Auth.ViewerJWT.JWKSURL = "/jwks.json" }, wantKey: "auth.viewer_jwt.jwks_url", wantMsg: "absolute http"},
		{name: "jwks plain http", mutate: func(c *Config) { c.Auth.ViewerJWT.JWKSURL = "http://idp.example.com/jwks" }, wantKey: "auth.viewer_jwt.jwks_url", wantMsg: "must use https"},
		{name: "leeway zero", mutate: func(c *Config) { c.Auth.ViewerJWT.Leeway = 0 }, wantKey: "auth.viewer_jwt.leeway", wantMsg: "positive"},
		{name: "leeway huge", mutate: func(c *Config) { c.Auth.ViewerJWT.Leeway = Duration(time.Hour) }, wantKey: "auth.viewer_jwt.leeway", wantMsg: "maximum 5m"},
		{name: "short admin key", mutate: func(c *Config) { c.Auth.AdminKeys = []string{"aaaaaaaaaaaaaaaa", "admin"} }, wantKey: "auth.admin_keys[1]", wantMsg: "at least 16 bytes"},
		{name: "admin key with space", mutate: func(c *Config) { c.Auth.AdminKeys = []string{"aaaaaaaa aaaaaaaa"} }, wantKey: "auth.admin_keys[0]", wantMsg: "spaces"},
		{name: "duplicate admin key", mutate: func(c *Config) { c.Auth.AdminKeys = []string{"aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa"} }, wantKey: "auth.admin_keys[1]", wantMsg: "same key as auth.admin_keys[0]"},
		{name: "retention", mutate: func(c *Config) { c.Archive.Retention = -1 }, wantKey: "archive.retention", wantMsg: "positive"},
		{name: "max_download", mutate: func(c *Config) { c.Archive.MaxDownload = 0 }, wantKey: "archive.max_download", wantMsg: "positive"},
		{name: "upstream_linger", mutate: func(c *Config) { c.Sessions.UpstreamLinger = 0 }, wantKey: "sessions.upstream_linger", wantMsg: "positive"},
		{name: "camera id empty", mutate: func(c *Config) { c.Cameras = []Camera{{Source: "builtin:demo"}} }, wantKey: "cameras[0].id", wantMsg: "not a valid id"},
		{name: "camera id slash", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "a/b", Source: "builtin:demo"}} }, wantKey: "cameras[0].id", wantMsg: "not a valid id"},
		{name: "camera id too long", mutate: func(c *Config) { c.Cameras = []Camera{{ID: strings.Repeat("a", 65), Source: "builtin:demo"}} }, wantKey: "cameras[0].id", wantMsg: "not a valid id"},
		{name: "camera id dot last (the API refuses it)", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "cam.", Source: "builtin:demo"}} }, wantKey: "cameras[0].id", wantMsg: "not a valid id"},
		{name: "camera id dot dot", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "a..b", Source: "builtin:demo"}} }, wantKey: "cameras[0].id", wantMsg: "not a valid id"},
		{name: "camera id dot first", mutate: func(c *Config) { c.Cameras = []Camera{{ID: ".a", Source: "builtin:demo"}} }, wantKey: "cameras[0].id", wantMsg: "not a valid id"},
		{name: "camera id duplicate", mutate: func(c *Config) {
			c.Cameras = []Camera{{ID: "a", Source: "builtin:demo"}, {ID: "b", Source: "builtin:demo"}, {ID: "a", Source: "builtin:demo"}}
		}, wantKey: "cameras[2].id", wantMsg: "already used by cameras[0]"},
		{name: "camera site", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "a", Site: "h q", Source: "builtin:demo"}} }, wantKey: "cameras[0].site", wantMsg: "not a valid id"},
		{name: "camera file source", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "a", Source: "file:///etc/passwd"}} }, wantKey: "cameras[0].source", wantMsg: "rtsp://…, rtsps://… or builtin:demo"},
		{name: "camera http source", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "a", Source: "http://cam/x"}} }, wantKey: "cameras[0].source", wantMsg: "rtsp://"},
		{name: "camera other builtin", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "a", Source: "builtin:other"}} }, wantKey: "cameras[0].source", wantMsg: "rtsp://"},
		{name: "camera no host", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "a", Source: "rtsp:///x"}} }, wantKey: "cameras[0].source", wantMsg: "no host"},
		{name: "camera empty source", mutate: func(c *Config) { c.Cameras = []Camera{{ID: "a"}} }, wantKey: "cameras[0].source", wantMsg: "rtsp://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a *FieldError", err)
			}
			if fe.Key != tc.wantKey || !strings.Contains(err.Error(), tc.wantKey+": ") || !strings.Contains(fe.Err.Error(), tc.wantMsg) {
				t.Fatalf("Validate() = %v (first key %q), want key %q with %q", err, fe.Key, tc.wantKey, tc.wantMsg)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.RTSP.Listen = ""
	c.LogLevel = "loud"
	c.Cameras = []Camera{{ID: "", Source: ""}}
	err := c.Validate()
	for _, key := range []string{"rtsp.listen: ", "log_level: ", "cameras[0].id: ", "cameras[0].source: "} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate() = %v, want it to mention %q", err, key)
		}
	}
}

// TestValidateDoesNotEchoSecrets: error messages end up in logs.
func TestValidateDoesNotEchoSecrets(t *testing.T) {
	c := Default()
	c.Redis.URL = "redis://user:topsecretpw@127.0.0.1:6379/notanumber"
	c.Auth.ViewerJWT.HS256Secret = "topsecretpw"
	c.Auth.AdminKeys = []string{"topsecretpw"}
	c.Cameras = []Camera{{ID: "a", Source: "rtsp://admin:topsecretpw@/x"}, {ID: "b", Source: "http://admin:topsecretpw@cam/x"}}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	if strings.Contains(err.Error(), "topsecretpw") {
		t.Fatalf("Validate() leaks the secret: %v", err)
	}
}
