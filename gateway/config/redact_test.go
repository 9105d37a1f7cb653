package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	c := Default()
	c.Redis.URL = "redis://default:redispw@127.0.0.1:6379/0"
	c.Auth.ViewerJWT.HS256Secret = secret32
	c.Auth.ViewerJWT.JWKSURL = "https://jwksuser:jwkspw@idp.example.com/jwks"
	c.Auth.ViewerJWT.PublicKeys = []string{"/etc/camgate/k.pem"}
	c.Auth.AdminKeys = []string{"adminkey-aaaaaaaa1", "adminkey-bbbbbbbb2"}
	c.Cameras = []Camera{{ID: "a", Source: "rtsp://admin:campw@10.0.0.5/s"}, {ID: "b", Source: "rtsp://10.0.0.6/s"}}
	orig := c
	origKeys := append([]string(nil), c.Auth.AdminKeys...)

	r := c.Redacted()
	checks := []struct{ name, got, want string }{
		{"hs256_secret", r.Auth.ViewerJWT.HS256Secret, "REDACTED"},
		{"admin_keys[0]", r.Auth.AdminKeys[0], "REDACTED"},
		{"admin_keys[1]", r.Auth.AdminKeys[1], "REDACTED"},
		{"redis.url", r.Redis.URL, "redis://default:REDACTED@127.0.0.1:6379/0"},
		{"jwks_url", r.Auth.ViewerJWT.JWKSURL, "https://jwksuser:REDACTED@idp.example.com/jwks"},
		{"cameras[0].source", r.Cameras[0].Source, "rtsp://admin:REDACTED@10.0.0.5/s"},
		{"cameras[1].source", r.Cameras[1].Source, "rtsp://10.0.0.6/s"},
		{"public_keys[0]", r.Auth.ViewerJWT.PublicKeys[0], "/etc/camgate/k.pem"},
		{"data_dir", r.DataDir, c.DataDir},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("Redacted().%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if !reflect.DeepEqual(c, orig) || !reflect.DeepEqual(c.Auth.AdminKeys, origKeys) || c.Cameras[0].Source != "rtsp://admin:campw@10.0.0.5/s" {
		t.Fatal("Redacted() modified the original")
	}

	s := c.String()
	for _, secret := range []string{secret32, "redispw", "jwkspw", "adminkey-", "campw"} {
		if strings.Contains(s, secret) {
			t.Errorf("String() contains secret %q:\n%s", secret, s)
		}
	}
	if !strings.Contains(s, "hs256_secret: REDACTED") || !strings.Contains(s, "retention: 168h") {
		t.Errorf("String() = \n%s\nwant redacted secret and readable durations", s)
	}
}

func TestRedactedEmptySecretStaysEmpty(t *testing.T) {
	r := Default().Redacted()
	if r.Auth.ViewerJWT.HS256Secret != "" || r.Auth.AdminKeys != nil || r.Redis.URL != "" {
		t.Fatalf("Redacted() of defaults = %+v, want unset secrets to stay unset (so the output shows they are not configured)", r.Auth)
	}
}

func TestStringRoundTrips(t *testing.T) {
	c := Default()
	c.DataDir = "/srv/camgate"
	c.Redis.URL = "redis://127.0.0.1:6379/1"
	c.Cameras = []Camera{{ID: "cam1", Site: "hq", Name: "Front door: east", Source: "builtin:demo", Record: true}}
	back, err := Parse([]byte(c.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("Parse(String()) = %+v, want %+v", back, c)
	}
}
