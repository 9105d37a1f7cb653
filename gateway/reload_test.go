package gateway

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/camgate/camgate/authz/token"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

func TestReloadSwapsKeysAndReportsRestartKeys(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/a", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	oldTok := viewerToken(t, "alice")
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+oldTok); err != nil {
		t.Fatal(err)
	}
	cfg := n.g.Config
	cfg.Auth.ViewerJWT.HS256Secret = "another-secret-0123456789abcdef-0123456789"
	cfg.HTTP.Listen = "127.0.0.1:1" // needs a restart: reported, not applied
	restart, err := n.g.Reload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(restart, "http.listen") {
		t.Fatalf("restart list %v should name http.listen", restart)
	}
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+oldTok); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("token of the old secret after reload: %v", err)
	}
	newTok, err := token.MintHS256([]byte(cfg.Auth.ViewerJWT.HS256Secret), "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+newTok); err != nil {
		t.Fatalf("token of the new secret: %v", err)
	}
	// A bad configuration changes nothing.
	bad := cfg
	bad.Auth.ViewerJWT.HS256Secret = "short"
	if _, err := n.g.Reload(bad); err == nil {
		t.Fatal("a too-short secret was accepted")
	}
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+newTok); err != nil {
		t.Fatalf("after a refused reload: %v", err)
	}
}

// logBuf collects a node's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// since returns what was logged after offset (a len of an earlier String).
func (l *logBuf) since(offset int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()[offset:]
}

func (l *logBuf) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// startLoggedNode is startNodeWith with the log captured and its level on a
// LevelVar, as cmd/camgate builds it.
func startLoggedNode(t *testing.T, adjust func(*config.Config)) (*node, *logBuf) {
	t.Helper()
	cfg := testConfig(t.TempDir(), adjust)
	logs := &logBuf{}
	level := new(slog.LevelVar)
	g := &Gateway{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})), LogLevel: level}
	return startGateway(t, g), logs
}

// rtspStatus sends one DESCRIBE of cam1 with tok and returns the status code.
func rtspStatus(t *testing.T, n *node, tok string) int {
	t.Helper()
	return rtspDescribe(t, n, "cam1", tok)
}

// checkStatus is the status of GET /api/v1/check about itself with a viewer
// token: 200 when the token is accepted, 401 when it is not.
func checkStatus(t *testing.T, n *node, tok string) int {
	t.Helper()
	code, _ := n.callAs(t, tok, "GET", "/check?device=cam1&action=live", "")
	return code
}

// signJWT signs claims (sub alice, exp in an hour unless given) with key.
func signJWT(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
	maps.Copy(c, claims)
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hs256(t *testing.T, claims jwt.MapClaims) string {
	return signJWT(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims)
}

// configLeaves walks every leaf field of config.Config by reflection and
// returns its key: "rtsp.listen", and for a list of structs each field of
// its first element ("cameras[0].source").
func configLeaves() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			key := prefix + name
			switch {
			case f.Type == reflect.TypeFor[config.Duration]():
				out = append(out, key)
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, key+".")
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), key+"[0].")
			default:
				out = append(out, key)
			}
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	return out
}

// leafValue finds a configLeaves key in cfg.
func leafValue(cfg *config.Config, key string) reflect.Value {
	v := reflect.ValueOf(cfg).Elem()
	for part := range strings.SplitSeq(key, ".") {
		name, elem := strings.CutSuffix(part, "[0]")
		for i := range v.NumField() {
			if n, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); n == name {
				v = v.Field(i)
				break
			}
		}
		if elem {
			v = v.Index(0)
		}
	}
	return v
}

// changeLeaf sets v to another value of its type.
func changeLeaf(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.ValueOf("x")))
	}
}

// reloadCase says how one key is changed and, for a key reload applies,
// what a user sees afterwards. A case without observe needs a restart.
type reloadCase struct {
	change  func(c *config.Config)                  // nil: changeLeaf
	setup   func(t *testing.T, n *node)             // before the reload
	observe func(t *testing.T, n *node)             // after it
	own     func(t *testing.T) func(*config.Config) // a node of its own, started with this adjustment
}

// TestReloadEveryKeyAppliedOrNamed walks every leaf of config.Config,
// changes it to another valid value, reloads, and asserts that the change is
// either seen by a user (the key is applied) or named in the returned
// list and in one WARN, with the running configuration keeping the old value.
// A key nobody classified here fails.
func TestReloadEveryKeyAppliedOrNamed(t *testing.T) {
	n, logs := startLoggedNode(t, nil)
	base := n.g.Config
	base.Cameras = slices.Clone(base.Cameras)
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/a", `{"subject":"alice","device":"cam1","actions":["live","ptz"]}`, 200)
	mustCall(t, n, "PUT", "/grants/b", `{"subject":"bob","device":"cam1","actions":["live"]}`, 200)

	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"k1","x":%q}]}`, base64.RawURLEncoding.EncodeToString(pub))
	}))
	t.Cleanup(jwks.Close)
	stop := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select { // a camera that never answers
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(stop) })
	var redisSrv *redistest.Server

	rtspListen := func(v string) func(*config.Config) { return func(c *config.Config) { c.RTSP.Listen = v } }
	withTLS := func(c *config.Config) { c.TLS.CertFile, c.TLS.KeyFile = "cert.pem", "key.pem" }
	cases := map[string]reloadCase{
		// Keys that need a restart.
		"data_dir":                      {},
		"public_url":                    {change: func(c *config.Config) { c.PublicURL = "https://camgate.example" }},
		"log_format":                    {change: func(c *config.Config) { c.LogFormat = "json" }},
		"rtsp.listen":                   {change: rtspListen("127.0.0.1:1")},
		"rtsp.udp_rtp_listen":           {change: func(c *config.Config) { c.RTSP.UDPRTPListen, c.RTSP.UDPRTCPListen = "127.0.0.1:8002", "127.0.0.1:8003" }},
		"rtsp.udp_rtcp_listen":          {change: func(c *config.Config) { c.RTSP.UDPRTPListen, c.RTSP.UDPRTCPListen = "127.0.0.1:8002", "127.0.0.1:8003" }},
		"rtsp.rtsps_listen":             {change: func(c *config.Config) { withTLS(c); c.RTSP.RTSPSListen = "127.0.0.1:8322" }},
		"rtsp.idle_timeout":             {change: func(c *config.Config) { c.RTSP.IdleTimeout = config.Duration(time.Minute) }},
		"rtsp.max_conns_per_ip":         {change: func(c *config.Config) { c.RTSP.MaxConnsPerIP = 7 }},
		"rtsp.auth_methods":             {change: func(c *config.Config) { c.RTSP.AuthMethods = []string{"digest"} }},
		"rtsp.upstream_udp_read_buffer": {change: func(c *config.Config) { c.RTSP.UpstreamUDPReadBuffer = 1 << 20 }},
		"http.listen":                   {change: func(c *config.Config) { c.HTTP.Listen = "127.0.0.1:1" }},
		"tls.cert_file":                 {change: withTLS},
		"tls.key_file":                  {change: withTLS},
		"webrtc.udp_mux_listen":         {change: func(c *config.Config) { c.WebRTC.UDPMuxListen = "127.0.0.1:1" }},
		"webrtc.port_min":               {change: func(c *config.Config) { c.WebRTC.PortMin, c.WebRTC.PortMax = 40000, 40100 }},
		"webrtc.port_max":               {},
		"webrtc.nat1to1_ips":            {change: func(c *config.Config) { c.WebRTC.NAT1To1IPs = []string{"203.0.113.7"} }},
		"webrtc.include_loopback":       {},
		"redis.url":                     {change: func(c *config.Config) { c.Redis.URL = "redis://127.0.0.1:1/0" }},
		"auth.admin_keys": {change: func(c *config.Config) {
			c.Auth.AdminKeys = append(slices.Clone(c.Auth.AdminKeys), "cg_admin_another_0123456789")
		}},
		"archive.retention":        {},
		"archive.max_download":     {},
		"archive.segment_duration": {},
		"archive.max_bytes":        {},
		"sessions.upstream_linger": {},
		"sessions.gop_cache":       {change: func(c *config.Config) { c.Sessions.GOPCache = "viewers" }},
		"sessions.audio_transcode": {change: func(c *config.Config) { c.Sessions.AudioTranscode = "off" }},
		"ptz.lease_ttl":            {},
		"ptz.priority":             {change: func(c *config.Config) { c.PTZ.Priority = []string{"user", "installer"} }},
		"cluster.enabled": {change: func(c *config.Config) {
			c.Redis.URL, c.Cluster.Enabled, c.Cluster.Secret = "redis://127.0.0.1:1/0", true, testClusterSecret
		}},
		"cluster.node_id":        {},
		"cluster.advertise":      {change: func(c *config.Config) { c.Cluster.Advertise = "127.0.0.9:8554" }},
		"cluster.advertise_http": {change: func(c *config.Config) { c.Cluster.AdvertiseHTTP = "http://127.0.0.9:8080" }},
		"cluster.secret":         {},
		"cluster.lease_ttl":      {},

		// Keys reload applies.
		"log_level": {
			change: func(c *config.Config) { c.LogLevel = "debug" },
			observe: func(t *testing.T, n *node) {
				at := logs.len()
				n.g.Logger.Debug("a debug line after the reload")
				if !strings.Contains(logs.since(at), "a debug line after the reload") {
					t.Fatal("log_level debug: a debug line is not logged")
				}
			},
		},
		"webrtc.allow_origin": {
			change: func(c *config.Config) { c.WebRTC.AllowOrigin = "https://viewer.example" },
			observe: func(t *testing.T, n *node) {
				for _, path := range []string{"/whep/cam1", "/hls/cam1/index.m3u8"} {
					req, _ := http.NewRequest("OPTIONS", "http://"+n.g.HTTPAddr().String()+path, nil)
					req.Header.Set("Origin", "https://viewer.example")
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					res.Body.Close()
					if got := res.Header.Get("Access-Control-Allow-Origin"); got != "https://viewer.example" {
						t.Errorf("OPTIONS %s: Access-Control-Allow-Origin %q, want the reloaded origin", path, got)
					}
				}
			},
		},
		"ptz.timeout": {
			change: func(c *config.Config) { c.PTZ.Timeout = config.Duration(200 * time.Millisecond) },
			setup: func(t *testing.T, n *node) {
				mustCall(t, n, "PUT", "/devices/cam1", `{"site":"hq","kind":"camera","source":"builtin:demo","ptz":{"onvif_url":"`+hung.URL+`","username":"u","password":"p"}}`, 200)
			},
			observe: func(t *testing.T, n *node) {
				req, _ := http.NewRequest("POST", n.api+"/cameras/cam1/ptz", strings.NewReader(`{"op":"stop"}`))
				req.Header.Set("Authorization", "Bearer "+viewerToken(t, "alice"))
				res, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
				if err != nil {
					t.Fatalf("PTZ to a silent camera with ptz.timeout 200ms: %v (the 5s of the start still applies)", err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusGatewayTimeout {
					t.Fatalf("PTZ to a silent camera: %d, want 504", res.StatusCode)
				}
			},
		},
		"http.max_body_bytes": {
			change: func(c *config.Config) { c.HTTP.MaxBodyBytes = 4096 },
			observe: func(t *testing.T, n *node) {
				big := `{"kind":"user","name":"` + strings.Repeat("x", 6000) + `"}`
				if code, _ := n.call(t, "PUT", "/subjects/big", big); code != http.StatusRequestEntityTooLarge {
					t.Fatalf("a 6 KB body with max_body_bytes 4096: %d, want 413", code)
				}
				mustCall(t, n, "PUT", "/subjects/small", `{"kind":"user"}`, 200)
			},
		},
		"redis.outage_grace": {
			own: func(t *testing.T) func(*config.Config) {
				redisSrv = redistest.Start(t, redistest.Options{NoPersistence: true})
				return func(c *config.Config) { c.Redis.URL = redisSrv.URL }
			},
			change: func(c *config.Config) { c.Redis.OutageGrace = config.Duration(time.Second) },
			setup: func(t *testing.T, n *node) {
				mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
				mustCall(t, n, "PUT", "/grants/a", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
				poll.Until(t, "alice to be allowed", func() bool { return n.allows(t, "alice") })
			},
			observe: func(t *testing.T, n *node) {
				redisSrv.Kill()
				poll.Until(t, "alice's cached decision to stop counting 1s into the outage", func() bool { return !n.allows(t, "alice") })
			},
		},
		"auth.viewer_jwt.hs256_secret": {
			change: func(c *config.Config) { c.Auth.ViewerJWT.HS256Secret = "another-secret-0123456789abcdef-0123456789" },
			observe: func(t *testing.T, n *node) {
				tok := signJWT(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef-0123456789"), "", nil)
				if checkStatus(t, n, tok) != 200 || checkStatus(t, n, hs256(t, nil)) != 401 {
					t.Fatal("the new secret's token is not accepted, or the old one still is")
				}
			},
		},
		"auth.viewer_jwt.public_keys": {
			change: func(c *config.Config) {
				c.Auth.ViewerJWT.PublicKeys = []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
			},
			observe: func(t *testing.T, n *node) {
				if code := checkStatus(t, n, signJWT(t, jwt.SigningMethodEdDSA, priv, "", nil)); code != 200 {
					t.Fatalf("a token of the new public key: %d", code)
				}
			},
		},
		"auth.viewer_jwt.jwks_url": {
			change: func(c *config.Config) { c.Auth.ViewerJWT.JWKSURL = jwks.URL },
			observe: func(t *testing.T, n *node) {
				if code := checkStatus(t, n, signJWT(t, jwt.SigningMethodEdDSA, priv, "k1", nil)); code != 200 {
					t.Fatalf("a token of the new JWKS's key: %d", code)
				}
			},
		},
		"auth.viewer_jwt.issuer": {
			change: func(c *config.Config) { c.Auth.ViewerJWT.Issuer = "https://issuer.example" },
			observe: func(t *testing.T, n *node) {
				if checkStatus(t, n, hs256(t, nil)) != 401 || checkStatus(t, n, hs256(t, jwt.MapClaims{"iss": "https://issuer.example"})) != 200 {
					t.Fatal("issuer not enforced after the reload")
				}
			},
		},
		"auth.viewer_jwt.audience": {
			change: func(c *config.Config) { c.Auth.ViewerJWT.Audience = "camgate-test" },
			observe: func(t *testing.T, n *node) {
				if checkStatus(t, n, hs256(t, nil)) != 401 || checkStatus(t, n, hs256(t, jwt.MapClaims{"aud": "camgate-test"})) != 200 {
					t.Fatal("audience not enforced after the reload")
				}
			},
		},
		"auth.viewer_jwt.leeway": {
			change: func(c *config.Config) { c.Auth.ViewerJWT.Leeway = config.Duration(time.Second) },
			observe: func(t *testing.T, n *node) {
				if code := checkStatus(t, n, hs256(t, jwt.MapClaims{"exp": time.Now().Add(-10 * time.Second).Unix()})); code != 401 {
					t.Fatalf("a token expired 10s ago with leeway 1s: %d, want 401", code)
				}
			},
		},
		"limits.auth_failures_per_minute": {
			change: func(c *config.Config) { c.Limits.AuthFailuresPerMinute = 1 },
			observe: func(t *testing.T, n *node) {
				if a, b := rtspStatus(t, n, "bad"), rtspStatus(t, n, "bad"); a != 401 || b != 429 {
					t.Fatalf("two bad tokens with auth_failures_per_minute 1: %d, %d; want 401, 429", a, b)
				}
			},
		},
		"limits.max_sessions_per_subject": {
			change: func(c *config.Config) { c.Limits.MaxSessionsPerSubject = 1 },
			observe: func(t *testing.T, n *node) {
				c := playRTSP(t, n, viewerToken(t, "alice"))
				defer c.Close()
				if code := rtspStatus(t, n, viewerToken(t, "alice")); code != 429 {
					t.Fatalf("alice's second session with max_sessions_per_subject 1: %d, want 429", code)
				}
			},
		},
		"limits.max_sessions_per_camera": {
			change: func(c *config.Config) { c.Limits.MaxSessionsPerCamera = 1 },
			observe: func(t *testing.T, n *node) {
				// The node is shared: an earlier case's session ends
				// asynchronously after its client closed.
				poll.Until(t, "earlier cases' sessions to end", func() bool { return n.g.Sessions().Len() == 0 })
				c := playRTSP(t, n, viewerToken(t, "alice"))
				defer c.Close()
				if code := rtspStatus(t, n, viewerToken(t, "bob")); code != 429 {
					t.Fatalf("a second viewer of cam1 with max_sessions_per_camera 1: %d, want 429", code)
				}
			},
		},
		"cameras[0].id": {
			change:  func(c *config.Config) { c.Cameras[0].ID = "cam9" },
			observe: func(t *testing.T, n *node) { mustCall(t, n, "GET", "/devices/cam9", "", 200) },
		},
		"cameras[0].site": {
			change:  func(c *config.Config) { c.Cameras[0].Site = "annex" },
			observe: deviceField("site", "annex"),
		},
		"cameras[0].name": {
			change:  func(c *config.Config) { c.Cameras[0].Name = "Front door" },
			observe: deviceField("name", "Front door"),
		},
		"cameras[0].source": {
			change:  func(c *config.Config) { c.Cameras[0].Source = "rtsp://127.0.0.1:1/cam" },
			observe: deviceField("source", "rtsp://127.0.0.1:1/cam"),
		},
		"cameras[0].record": {
			change:  func(c *config.Config) { c.Cameras[0].Record = true },
			observe: deviceField("record", true),
		},
		"cameras[0].transport": {
			change:  func(c *config.Config) { c.Cameras[0].Transport = "tcp" },
			observe: deviceField("transport", "tcp"),
		},
		"cameras[0].udp_read_buffer": {
			change:  func(c *config.Config) { c.Cameras[0].UDPReadBuffer = 1 << 20 },
			observe: deviceField("udp_read_buffer", float64(1<<20)),
		},
	}

	for _, leaf := range configLeaves() {
		t.Run(leaf, func(t *testing.T) {
			c, ok := cases[leaf]
			if !ok {
				t.Fatalf("configuration key %s is not classified: make Reload apply it (liveKeys) or list it in restartKeys, and add it to this table", leaf)
			}
			key, _, _ := strings.Cut(leaf, "[") // a camera field is the cameras key
			_, live := n.g.liveKeys()[key]
			if c.observe != nil && !live {
				t.Fatalf("%s: this test observes it applied, but liveKeys does not name it", key)
			}
			if c.observe == nil && !slices.Contains(restartKeys(), key) {
				t.Fatalf("%s: this test expects a restart, but restartKeys does not name it", key)
			}
			tn, tlogs, tbase := n, logs, base
			if c.own != nil {
				tn, tlogs = startLoggedNode(t, c.own(t))
				tbase = tn.g.Config
				tbase.Cameras = slices.Clone(tbase.Cameras)
			}
			if c.setup != nil {
				c.setup(t, tn)
			}
			next := tbase
			next.Cameras = slices.Clone(tbase.Cameras)
			if c.change != nil {
				c.change(&next)
			} else {
				changeLeaf(leafValue(&next, leaf))
			}
			if !slices.Contains(config.Diff(tbase, next), key) {
				t.Fatalf("the change does not change %s", key)
			}
			at := tlogs.len()
			restart, err := tn.g.Reload(next)
			if err != nil {
				t.Fatalf("reload with a changed %s: %v (give it a valid change in this table)", leaf, err)
			}
			warns := warnLines(tlogs.since(at))
			if c.observe != nil {
				if slices.Contains(restart, key) || len(warns) != 0 {
					t.Fatalf("%s is applied live but was reported as needing a restart: %v %q", key, restart, warns)
				}
				if d := config.Diff(tn.g.Config, next); len(d) != 0 {
					t.Fatalf("after applying %s the running configuration still differs in %v", key, d)
				}
				c.observe(t, tn)
			} else {
				if !slices.Contains(restart, key) {
					t.Fatalf("%s changed and needs a restart, but Reload returned %v", key, restart)
				}
				if len(warns) != 1 || !strings.Contains(warns[0], "needs a restart") || !strings.Contains(warns[0], key) {
					t.Fatalf("want one WARN naming %s as needing a restart, got %q", key, warns)
				}
				if d := config.Diff(tn.g.Config, tbase); len(d) != 0 {
					t.Fatalf("%s needs a restart, but the running configuration took %v", key, d)
				}
				mustCall(t, tn, "GET", "/devices/cam1", "", 200) // still serving, on the old address
			}
			if c.own != nil {
				return
			}
			restart, err = tn.g.Reload(tbase)
			if err != nil || len(restart) != 0 {
				t.Fatalf("reload back to the start configuration: %v, restart %v", err, restart)
			}
		})
	}
}

// deviceField observes a field of device cam1 through the API.
func deviceField(field string, want any) func(t *testing.T, n *node) {
	return func(t *testing.T, n *node) {
		out := mustCall(t, n, "GET", "/devices/cam1", "", 200)
		if out[field] != want {
			t.Fatalf("device cam1 %s = %v, want %v", field, out[field], want)
		}
	}
}

// warnLines returns the WARN lines of a text log.
func warnLines(log string) []string {
	var out []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, "level=WARN") {
			out = append(out, line)
		}
	}
	return out
}

// TestReloadClassifiesEveryKey: every configuration key is either applied
// by Reload or listed as needing a restart, not both.
func TestReloadClassifiesEveryKey(t *testing.T) {
	g := &Gateway{}
	live := g.liveKeys()
	for _, key := range config.Keys() {
		_, l := live[key]
		r := slices.Contains(restartKeys(), key)
		if l == r {
			t.Errorf("%s: live %v, needs a restart %v; want exactly one", key, l, r)
		}
	}
	for key := range live {
		if !slices.Contains(config.Keys(), key) {
			t.Errorf("liveKeys names %s, which is not a configuration key", key)
		}
	}
	for _, key := range restartKeys() {
		if !slices.Contains(config.Keys(), key) {
			t.Errorf("restartKeys names %s, which is not a configuration key", key)
		}
	}
}

// TestReloadLogLevelWithoutLevelVar: a gateway whose logger has no LevelVar
// cannot change its level, and says so.
func TestReloadLogLevelWithoutLevelVar(t *testing.T) {
	n := startNode(t, t.TempDir())
	cfg := n.g.Config
	cfg.LogLevel = "debug"
	restart, err := n.g.Reload(cfg)
	if err != nil || !slices.Equal(restart, []string{"log_level"}) {
		t.Fatalf("Reload = %v, %v; want log_level named as needing a restart", restart, err)
	}
	if n.g.Config.LogLevel != "info" {
		t.Fatalf("running log_level %q, want the old info", n.g.Config.LogLevel)
	}
}

// TestReloadMaxBodyAboveUploadLimit: the server reads no body above the
// upload limit fixed at start, so a larger max_body_bytes needs a restart
// and the old limit stays.
func TestReloadMaxBodyAboveUploadLimit(t *testing.T) {
	n := startNode(t, t.TempDir())
	cfg := n.g.Config
	cfg.HTTP.MaxBodyBytes = 64 << 20
	restart, err := n.g.Reload(cfg)
	if err != nil || !slices.Equal(restart, []string{"http.max_body_bytes"}) {
		t.Fatalf("Reload = %v, %v; want http.max_body_bytes named as needing a restart", restart, err)
	}
	big := `{"kind":"user","name":"` + strings.Repeat("x", 2<<20) + `"}`
	if code, _ := n.call(t, "PUT", "/subjects/big", big); code != 413 {
		t.Fatalf("a 2 MiB body after the refused raise: %d, want 413 (the old 1 MiB limit)", code)
	}
}
