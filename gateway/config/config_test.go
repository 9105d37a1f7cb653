package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const secret32 = "0123456789abcdef0123456789abcdef"

func TestLoadWithoutFileGivesDefaults(t *testing.T) {
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("Load(\"\", nil) = %+v, want Default()", cfg)
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestParseYAML(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    func(c *Config) // applied to Default()
		wantErr string          // substring; the key path must be in it
	}{
		{name: "empty", yaml: "", want: func(*Config) {}},
		{name: "comments only", yaml: "# nothing\n", want: func(*Config) {}},
		{
			name: "design example",
			yaml: `
data_dir: /var/lib/camgate
public_url: https://cams.example.com
rtsp: { listen: ":8554" }
http: { listen: ":8080" }
redis: { url: "" }
auth:
  viewer_jwt: { hs256_secret: "` + secret32 + `", public_keys: [], jwks_url: "", issuer: "backend", audience: "camgate" }
  admin_keys: []
archive: { retention: 168h }
cameras:
  - { id: cam1, site: hq, source: "rtsp://127.0.0.1:8554/cam1", record: true }
`,
			want: func(c *Config) {
				c.DataDir = "/var/lib/camgate"
				c.PublicURL = "https://cams.example.com"
				c.Auth.ViewerJWT.HS256Secret = secret32
				c.Auth.ViewerJWT.Issuer = "backend"
				c.Auth.ViewerJWT.Audience = "camgate"
				c.Cameras = []Camera{{ID: "cam1", Site: "hq", Source: "rtsp://127.0.0.1:8554/cam1", Record: true}}
			},
		},
		{
			name: "partial section keeps sibling defaults",
			yaml: "rtsp:\n  listen: 127.0.0.1:9554\n",
			want: func(c *Config) { c.RTSP.Listen = "127.0.0.1:9554" },
		},
		{name: "null section keeps defaults", yaml: "rtsp:\nredis: ~\n", want: func(*Config) {}},
		{
			name: "empty strings disable UDP",
			yaml: "rtsp: {udp_rtp_listen: \"\", udp_rtcp_listen: \"\"}\n",
			want: func(c *Config) { c.RTSP.UDPRTPListen, c.RTSP.UDPRTCPListen = "", "" },
		},
		{
			name: "rtsp idle timeout and connection cap",
			yaml: "rtsp: {idle_timeout: 30s, max_conns_per_ip: 0}\n",
			want: func(c *Config) { c.RTSP.IdleTimeout, c.RTSP.MaxConnsPerIP = Duration(30*time.Second), 0 },
		},
		{
			name: "durations",
			yaml: "archive: {retention: 720h, max_download: 90m}\nsessions: {upstream_linger: 2.5s}\n",
			want: func(c *Config) {
				c.Archive.Retention = Duration(720 * time.Hour)
				c.Archive.MaxDownload = Duration(90 * time.Minute)
				c.Sessions.UpstreamLinger = Duration(2500 * time.Millisecond)
			},
		},
		{
			name: "anchors and aliases",
			yaml: "auth: {admin_keys: &k [aaaaaaaaaaaaaaaa1]}\ncameras:\n  - &c {id: a, source: 'builtin:demo'}\n",
			want: func(c *Config) {
				c.Auth.AdminKeys = []string{"aaaaaaaaaaaaaaaa1"}
				c.Cameras = []Camera{{ID: "a", Source: "builtin:demo"}}
			},
		},
		{name: "empty list is nil", yaml: "cameras: []\nauth: {admin_keys: []}\n", want: func(*Config) {}},
		{name: "unknown top-level key", yaml: "dta_dir: x\n", wantErr: "dta_dir: line 1: unknown key"},
		{name: "unknown nested key", yaml: "auth:\n  viewer_jwt:\n    isuer: x\n", wantErr: "auth.viewer_jwt.isuer: line 3: unknown key"},
		{name: "unknown camera key", yaml: "cameras:\n  - {id: a, source: 'builtin:demo'}\n  - {id: b, sorce: x}\n", wantErr: "cameras[1].sorce: line 3: unknown key"},
		{name: "duplicate key", yaml: "rtsp:\n  listen: :1\n  listen: :2\n", wantErr: "rtsp.listen: line 3: duplicate key (first on line 2)"},
		{name: "bare number duration", yaml: "archive: {retention: 3600}\n", wantErr: `archive.retention: line 1: invalid duration "3600"`},
		{name: "bad duration", yaml: "sessions: {upstream_linger: soon}\n", wantErr: "sessions.upstream_linger: line 1: invalid duration"},
		{name: "list for a string", yaml: "data_dir: [a, b]\n", wantErr: "data_dir: line 1: expected a single value, got a list"},
		{name: "string for a list", yaml: "auth: {admin_keys: abc}\n", wantErr: "auth.admin_keys: line 1: expected a list, got a value"},
		{name: "scalar for a section", yaml: "rtsp: 8554\n", wantErr: "rtsp: line 1: expected a mapping"},
		{name: "string for an int", yaml: "http: {max_body_bytes: lots}\n", wantErr: "http.max_body_bytes: line 1: cannot unmarshal"},
		{name: "not a mapping", yaml: "- a\n- b\n", wantErr: "(document): line 1: expected a mapping"},
		{name: "two documents", yaml: "data_dir: a\n---\ndata_dir: b\n", wantErr: "exactly one document"},
		{name: "syntax error", yaml: "rtsp: {listen: \n", wantErr: "yaml: "},
		{name: "merge keys are unknown", yaml: "rtsp:\n  <<: {listen: ':1'}\n", wantErr: "rtsp.<<: line 2: unknown key"},
		{name: "validation runs after the file", yaml: "rtsp: {listen: nowhere}\n", wantErr: `rtsp.listen: "nowhere" is not host:port`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), nil)
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

func TestUnknownKeyIsNamedError(t *testing.T) {
	_, err := Parse([]byte("http:\n  max_body: 10\n"), nil)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "http.max_body" || !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want a FieldError for http.max_body wrapping ErrUnknownKey", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "camgate.yml")
	if err := os.WriteFile(path, []byte("data_dir: /srv/cg\nhttp: {listen: ':9090'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, []string{"CAMGATE_HTTP_LISTEN=127.0.0.1:9191", "HOME=/root"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/srv/cg" || cfg.HTTP.Listen != "127.0.0.1:9191" {
		t.Fatalf("got data_dir %q http.listen %q; want the file's data_dir and the environment's listen", cfg.DataDir, cfg.HTTP.Listen)
	}

	if err := os.WriteFile(path, []byte("rtsp: {lsten: ':1'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "rtsp.lsten") {
		t.Fatalf("error = %v, want it to name the file and the key", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: error = %v, want os.ErrNotExist", err)
	}
}

func TestPublicKeysPEM(t *testing.T) {
	dir := t.TempDir()
	const pemText = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
	path := filepath.Join(dir, "k.pem")
	if err := os.WriteFile(path, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	j := ViewerJWT{PublicKeys: []string{"  " + pemText, path}}
	got, err := j.PublicKeysPEM()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != strings.TrimSpace(pemText) || got[1] != pemText {
		t.Fatalf("PublicKeysPEM() = %q", got)
	}
	j.PublicKeys = append(j.PublicKeys, filepath.Join(dir, "nope.pem"))
	_, err = j.PublicKeysPEM()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "auth.viewer_jwt.public_keys[2]" || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error = %v, want a FieldError for public_keys[2] wrapping os.ErrNotExist", err)
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		168 * time.Hour: "168h", 90 * time.Minute: "1h30m", time.Hour + time.Second: "1h0m1s",
		30 * time.Second: "30s", time.Minute: "1m", 0: "0s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
		back, err := ParseDuration(Duration(d).String())
		if err != nil || back.D() != d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", Duration(d).String(), back, err, d)
		}
	}
}
