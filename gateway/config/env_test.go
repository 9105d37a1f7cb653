package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     []string
		want    func(c *Config)
		wantErr string
	}{
		{
			name: "strings",
			env:  []string{"CAMGATE_DATA_DIR=/data", "CAMGATE_RTSP_LISTEN=127.0.0.1:9554", "CAMGATE_REDIS_URL=redis://127.0.0.1:6379/2", "CAMGATE_AUTH_VIEWER_JWT_HS256_SECRET=" + secret32},
			want: func(c *Config) {
				c.DataDir, c.RTSP.Listen, c.Redis.URL = "/data", "127.0.0.1:9554", "redis://127.0.0.1:6379/2"
				c.Auth.ViewerJWT.HS256Secret = secret32
			},
		},
		{
			name: "comma-separated list",
			env:  []string{"CAMGATE_AUTH_ADMIN_KEYS= aaaaaaaaaaaaaaaa1, ,bbbbbbbbbbbbbbbb2 "},
			want: func(c *Config) { c.Auth.AdminKeys = []string{"aaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbb2"} },
		},
		{
			name: "duration and integer",
			env:  []string{"CAMGATE_ARCHIVE_RETENTION=720h", "CAMGATE_HTTP_MAX_BODY_BYTES=4096", "CAMGATE_AUTH_VIEWER_JWT_LEEWAY=5s"},
			want: func(c *Config) {
				c.Archive.Retention = Duration(720 * time.Hour)
				c.HTTP.MaxBodyBytes = 4096
				c.Auth.ViewerJWT.Leeway = Duration(5 * time.Second)
			},
		},
		{
			name: "empty value disables UDP",
			env:  []string{"CAMGATE_RTSP_UDP_RTP_LISTEN=", "CAMGATE_RTSP_UDP_RTCP_LISTEN="},
			want: func(c *Config) { c.RTSP.UDPRTPListen, c.RTSP.UDPRTCPListen = "", "" },
		},
		{
			name: "cameras as YAML",
			env:  []string{`CAMGATE_CAMERAS=[{id: cam1, site: hq, source: "builtin:demo", record: true}]`},
			want: func(c *Config) { c.Cameras = []Camera{{ID: "cam1", Site: "hq", Source: "builtin:demo", Record: true}} },
		},
		{
			name: "environment beats file",
			yaml: "data_dir: /from-file\nauth: {admin_keys: [aaaaaaaaaaaaaaaa1]}\n",
			env:  []string{"CAMGATE_DATA_DIR=/from-env", "CAMGATE_AUTH_ADMIN_KEYS="},
			want: func(c *Config) { c.DataDir = "/from-env" },
		},
		{
			name: "other variables are ignored",
			env:  []string{"HOME=/root", "CAMGATEWAY=1", "PATH"},
			want: func(*Config) {},
		},
		{name: "unknown variable", env: []string{"CAMGATE_RTSP_LISTN=:1"}, wantErr: "CAMGATE_RTSP_LISTN: unknown key"},
		{name: "section is not a variable", env: []string{"CAMGATE_RTSP=x"}, wantErr: "CAMGATE_RTSP: unknown key"},
		{name: "bad integer", env: []string{"CAMGATE_HTTP_MAX_BODY_BYTES=1MiB"}, wantErr: `CAMGATE_HTTP_MAX_BODY_BYTES: (http.max_body_bytes) invalid integer "1MiB"`},
		{name: "bad duration", env: []string{"CAMGATE_ARCHIVE_MAX_DOWNLOAD=60"}, wantErr: `CAMGATE_ARCHIVE_MAX_DOWNLOAD: (archive.max_download) invalid duration "60"`},
		{name: "bad camera YAML", env: []string{"CAMGATE_CAMERAS=[{id: a, sorce: x}]"}, wantErr: "CAMGATE_CAMERAS: (cameras) cameras[0].sorce: line 1: unknown key"},
		{name: "validated afterwards", env: []string{"CAMGATE_LOG_FORMAT=xml"}, wantErr: `log_format: "xml" must be one of text, json`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tc.want(&want)
			if !reflect.DeepEqual(cfg, want) {
				t.Fatalf("got  %+v\nwant %+v", cfg, want)
			}
		})
	}
}

func TestUnknownVariableIsNamedError(t *testing.T) {
	_, err := Parse(nil, []string{"CAMGATE_REDIS_ADDR=127.0.0.1:6379"})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "CAMGATE_REDIS_ADDR" || !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want a FieldError naming CAMGATE_REDIS_ADDR wrapping ErrUnknownKey", err)
	}
}

// TestEnvNames pins the variable names users and scripts rely on, and checks
// that every one of them actually sets something.
func TestEnvNames(t *testing.T) {
	want := []string{
		"CAMGATE_ARCHIVE_MAX_BYTES", "CAMGATE_ARCHIVE_MAX_DOWNLOAD", "CAMGATE_ARCHIVE_RETENTION", "CAMGATE_ARCHIVE_SEGMENT_DURATION",
		"CAMGATE_AUTH_ADMIN_KEYS", "CAMGATE_AUTH_VIEWER_JWT_AUDIENCE", "CAMGATE_AUTH_VIEWER_JWT_HS256_SECRET",
		"CAMGATE_AUTH_VIEWER_JWT_ISSUER", "CAMGATE_AUTH_VIEWER_JWT_JWKS_URL", "CAMGATE_AUTH_VIEWER_JWT_LEEWAY",
		"CAMGATE_AUTH_VIEWER_JWT_PUBLIC_KEYS", "CAMGATE_CAMERAS",
		"CAMGATE_CLUSTER_ADVERTISE", "CAMGATE_CLUSTER_ADVERTISE_HTTP", "CAMGATE_CLUSTER_ENABLED", "CAMGATE_CLUSTER_LEASE_TTL", "CAMGATE_CLUSTER_NODE_ID", "CAMGATE_CLUSTER_SECRET",
		"CAMGATE_DATA_DIR",
		"CAMGATE_HTTP_LISTEN", "CAMGATE_HTTP_MAX_BODY_BYTES",
		"CAMGATE_LIMITS_AUTH_FAILURES_PER_MINUTE", "CAMGATE_LIMITS_MAX_SESSIONS_PER_CAMERA", "CAMGATE_LIMITS_MAX_SESSIONS_PER_SUBJECT",
		"CAMGATE_LOG_FORMAT", "CAMGATE_LOG_LEVEL",
		"CAMGATE_PTZ_LEASE_TTL", "CAMGATE_PTZ_PRIORITY", "CAMGATE_PTZ_TIMEOUT", "CAMGATE_PUBLIC_URL", "CAMGATE_REDIS_OUTAGE_GRACE", "CAMGATE_REDIS_URL", "CAMGATE_RTSP_AUTH_METHODS", "CAMGATE_RTSP_IDLE_TIMEOUT", "CAMGATE_RTSP_LISTEN", "CAMGATE_RTSP_MAX_CONNS_PER_IP", "CAMGATE_RTSP_RTSPS_LISTEN", "CAMGATE_RTSP_UDP_RTCP_LISTEN",
		"CAMGATE_RTSP_UDP_RTP_LISTEN", "CAMGATE_RTSP_UPSTREAM_UDP_READ_BUFFER", "CAMGATE_SESSIONS_AUDIO_TRANSCODE", "CAMGATE_SESSIONS_GOP_CACHE", "CAMGATE_SESSIONS_UPSTREAM_LINGER", "CAMGATE_TLS_CERT_FILE", "CAMGATE_TLS_KEY_FILE",
		"CAMGATE_WEBRTC_ALLOW_ORIGIN", "CAMGATE_WEBRTC_INCLUDE_LOOPBACK", "CAMGATE_WEBRTC_NAT1TO1_IPS", "CAMGATE_WEBRTC_PORT_MAX",
		"CAMGATE_WEBRTC_PORT_MIN", "CAMGATE_WEBRTC_UDP_MUX_LISTEN",
	}
	got := EnvNames()
	if !slices.Equal(got, want) {
		t.Fatalf("EnvNames() = %q\nwant %q", got, want)
	}
	values := map[string]string{
		"CAMGATE_ARCHIVE_MAX_DOWNLOAD": "2h", "CAMGATE_ARCHIVE_RETENTION": "2h", "CAMGATE_ARCHIVE_SEGMENT_DURATION": "2h", "CAMGATE_ARCHIVE_MAX_BYTES": "7",
		"CAMGATE_LIMITS_AUTH_FAILURES_PER_MINUTE": "7", "CAMGATE_LIMITS_MAX_SESSIONS_PER_CAMERA": "7", "CAMGATE_LIMITS_MAX_SESSIONS_PER_SUBJECT": "7",
		"CAMGATE_WEBRTC_INCLUDE_LOOPBACK": "true", "CAMGATE_WEBRTC_NAT1TO1_IPS": "192.0.2.1", "CAMGATE_WEBRTC_PORT_MAX": "9", "CAMGATE_WEBRTC_PORT_MIN": "8", "CAMGATE_WEBRTC_UDP_MUX_LISTEN": ":9999", "CAMGATE_SESSIONS_UPSTREAM_LINGER": "2h", "CAMGATE_REDIS_OUTAGE_GRACE": "2h", "CAMGATE_PTZ_LEASE_TTL": "2h", "CAMGATE_PTZ_TIMEOUT": "2h", "CAMGATE_PTZ_PRIORITY": "user,company",
		"CAMGATE_AUTH_VIEWER_JWT_LEEWAY": "1m", "CAMGATE_HTTP_MAX_BODY_BYTES": "7", "CAMGATE_RTSP_IDLE_TIMEOUT": "1m", "CAMGATE_RTSP_MAX_CONNS_PER_IP": "7", "CAMGATE_RTSP_UPSTREAM_UDP_READ_BUFFER": "7",
		"CAMGATE_CAMERAS": "[{id: x, source: 'builtin:demo'}]", "CAMGATE_AUTH_ADMIN_KEYS": "k",
		"CAMGATE_AUTH_VIEWER_JWT_PUBLIC_KEYS": "k",
		"CAMGATE_CLUSTER_ENABLED":             "true", "CAMGATE_CLUSTER_LEASE_TTL": "2h",
	}
	for _, name := range got {
		v, ok := values[name]
		if !ok {
			v = "changed"
		}
		cfg := Default()
		if err := applyEnv([]string{name + "=" + v}, &cfg); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if reflect.DeepEqual(cfg, Default()) {
			t.Errorf("%s=%s changed nothing", name, v)
		}
	}
}
