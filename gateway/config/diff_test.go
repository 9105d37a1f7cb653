package config

import (
	"slices"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{name: "nothing", change: func(*Config) {}},
		{name: "top-level string", change: func(c *Config) { c.DataDir = "/elsewhere" }, want: []string{"data_dir"}},
		{name: "nested keys, in struct order", change: func(c *Config) {
			c.Sessions.UpstreamLinger = Duration(time.Minute)
			c.RTSP.Listen = ":9554"
			c.Auth.ViewerJWT.Issuer = "https://issuer.example"
		}, want: []string{"rtsp.listen", "auth.viewer_jwt.issuer", "sessions.upstream_linger"}},
		{name: "a list is one key", change: func(c *Config) { c.PTZ.Priority = []string{"user"} }, want: []string{"ptz.priority"}},
		{name: "a camera field is the cameras key", change: func(c *Config) { c.Cameras[0].Record = true }, want: []string{"cameras"}},
		{name: "an empty list equals none", change: func(c *Config) { c.Auth.AdminKeys = []string{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Default()
			a.Cameras = []Camera{{ID: "cam1", Source: "builtin:demo"}}
			b := a
			b.Cameras = slices.Clone(a.Cameras)
			b.PTZ.Priority = slices.Clone(a.PTZ.Priority)
			tt.change(&b)
			if got := Diff(a, b); !slices.Equal(got, tt.want) {
				t.Fatalf("Diff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCopyKeys(t *testing.T) {
	running, next := Default(), Default()
	next.LogLevel, next.RTSP.Listen, next.HTTP.MaxBodyBytes = "debug", ":9554", 4096
	CopyKeys(&running, next, []string{"log_level", "http.max_body_bytes", "no.such_key"})
	if running.LogLevel != "debug" || running.HTTP.MaxBodyBytes != 4096 {
		t.Fatalf("copied keys not set: %+v", running)
	}
	if running.RTSP.Listen != Default().RTSP.Listen {
		t.Fatalf("rtsp.listen was not named but changed to %q", running.RTSP.Listen)
	}
	if got := Diff(running, next); !slices.Equal(got, []string{"rtsp.listen"}) {
		t.Fatalf("after CopyKeys the configurations differ in %v, want only rtsp.listen", got)
	}
}

func TestKeysCoverEveryLeaf(t *testing.T) {
	keys := Keys()
	for _, k := range []string{"data_dir", "log_level", "rtsp.listen", "webrtc.allow_origin", "auth.viewer_jwt.leeway", "redis.outage_grace", "ptz.timeout", "cameras"} {
		if !slices.Contains(keys, k) {
			t.Errorf("Keys() lacks %s", k)
		}
	}
	if len(keys) != len(EnvNames()) {
		t.Fatalf("%d keys but %d environment variables", len(keys), len(EnvNames()))
	}
}
