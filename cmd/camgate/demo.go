package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/token"
	"github.com/camgate/camgate/gateway"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/gateway/creds"
	"github.com/camgate/camgate/links"
)

// demoSecrets are generated on the first `camgate demo` and kept in the data
// folder, so tokens printed once keep working after a restart.
type demoSecrets struct {
	HS256Secret string `json:"hs256_secret"`
	AdminKey    string `json:"admin_key"`
}

const demoSecretsFile = "demo-secrets.json"

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// loadDemoSecrets reads the demo secrets, creating them when absent.
func loadDemoSecrets(dataDir string, create bool) (demoSecrets, error) {
	path := filepath.Join(dataDir, demoSecretsFile)
	var s demoSecrets
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &s); err != nil {
			return s, fmt.Errorf("%s: %w", path, err)
		}
		return s, nil
	case !errors.Is(err, os.ErrNotExist) || !create:
		return s, err
	}
	s = demoSecrets{HS256Secret: randomHex(32), AdminKey: "cg_admin_" + randomHex(16)}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return s, err
	}
	b, _ = json.MarshalIndent(s, "", "  ")
	return s, os.WriteFile(path, b, 0o600)
}

// demoSetup writes the demo into the store through authz's typed API: a
// site, the demo camera, two viewers and their grants. Puts are idempotent,
// so a restart is harmless.
func demoSetup(ctx context.Context, az *authz.Service) error {
	root := authz.Caller{Root: true}
	steps := []struct {
		what string
		put  func() error
	}{
		{"org demo-org", func() error {
			_, _, err := az.PutOrg(ctx, root, authz.Org{ID: "demo-org", Name: "Demo organization"})
			return err
		}},
		{"site demo-site", func() error {
			_, _, err := az.PutSite(ctx, root, authz.Site{ID: "demo-site", Org: "demo-org", Name: "Demo site"})
			return err
		}},
		{"device demo", func() error {
			_, _, err := az.PutDevice(ctx, root, authz.Device{ID: "demo", Site: "demo-site", Kind: authz.DeviceCamera, Name: "Demo camera", Source: "builtin:demo"})
			return err
		}},
		{"subject alice", func() error {
			_, _, err := az.PutSubject(ctx, root, authz.Subject{ID: "alice", Kind: authz.SubjectUser, Name: "Alice", Email: "alice@example.com", Org: "demo-org"})
			return err
		}},
		{"subject bob", func() error {
			_, _, err := az.PutSubject(ctx, root, authz.Subject{ID: "bob", Kind: authz.SubjectUser, Name: "Bob", Email: "bob@example.com", Org: "demo-org"})
			return err
		}},
		{"grant demo-alice", func() error {
			_, _, err := az.PutGrant(ctx, root, authz.Grant{ID: "demo-alice", Subject: "alice", Device: "demo", Actions: []string{"live", "sound", "archive", "download"}, Condition: "always"})
			return err
		}},
		{"grant demo-bob", func() error {
			_, _, err := az.PutGrant(ctx, root, authz.Grant{ID: "demo-bob", Subject: "bob", Device: "demo", Actions: []string{"live"}, Condition: "always"})
			return err
		}},
	}
	for _, st := range steps {
		if err := st.put(); err != nil {
			return fmt.Errorf("demo setup %s: %w", st.what, err)
		}
	}
	return nil
}

func demo(args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(flag.NewFlagSet("demo", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	secrets, err := loadDemoSecrets(cfg.DataDir, true)
	if err != nil {
		return fmt.Errorf("demo secrets: %w", err)
	}
	if cfg.Auth.ViewerJWT.HS256Secret == "" {
		cfg.Auth.ViewerJWT.HS256Secret = secrets.HS256Secret
	}
	if len(cfg.Auth.AdminKeys) == 0 {
		cfg.Auth.AdminKeys = []string{secrets.AdminKey}
	}
	log, _ := newLogger(cfg, stderr)
	g := &gateway.Gateway{Config: cfg, Logger: log, Version: version}
	if err := g.Initialize(); err != nil {
		return err
	}
	defer g.Close()
	if err := demoSetup(context.Background(), g.Authz()); err != nil {
		return err
	}
	root := authz.Caller{Root: true}
	secret := []byte(cfg.Auth.ViewerJWT.HS256Secret)
	alice, err := token.MintHS256(secret, "alice", 24*time.Hour, time.Now())
	if err != nil {
		return err
	}
	bob, err := token.MintHS256(secret, "bob", 24*time.Hour, time.Now())
	if err != nil {
		return err
	}
	until := time.Now().Add(24 * time.Hour)
	link, err := g.Links().Create(root, links.CreateRequest{Device: "demo", Actions: []string{"live", "sound"}, NotAfter: &until})
	if err != nil {
		return fmt.Errorf("demo share link: %w", err)
	}
	cred, err := demoCredential(g.StreamCredentials())
	if err != nil {
		return fmt.Errorf("demo stream credential: %w", err)
	}
	printDemo(stdout, g, cfg, demoPrint{adminKey: secrets.AdminKey, alice: alice, bob: bob, shareURL: link.URL, user: cred.Username, pass: cred.Password})
	waitForSignal()
	fmt.Fprintln(stdout, "\nstopping…")
	return nil
}

// demoLabel marks the demo's stream credential; each start replaces it
// (its password is shown only when created).
const demoLabel = "camgate demo"

func demoCredential(sc *creds.Service) (creds.Created, error) {
	ctx := context.Background()
	old, err := sc.List(ctx)
	if err != nil {
		return creds.Created{}, err
	}
	for _, v := range old {
		if v.Label == demoLabel && v.Subject == "alice" {
			if err := sc.Revoke(ctx, v.ID); err != nil {
				return creds.Created{}, err
			}
		}
	}
	return sc.Create(ctx, creds.CreateRequest{Subject: "alice", Label: demoLabel}, "root")
}

// demoPrint is what the demo's copy-paste lines name.
type demoPrint struct{ adminKey, alice, bob, shareURL, user, pass string }

func rtspPort(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

func hostPort(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return "localhost:" + port
}

func printDemo(w io.Writer, g *gateway.Gateway, cfg config.Config, d demoPrint) {
	adminKey, alice, bob := d.adminKey, d.alice, d.bob
	rtsp := "rtsp://" + hostPort(g.RTSPAddr())
	web := "http://" + hostPort(g.HTTPAddr())
	api := web + "/api/v1"
	if len(cfg.Auth.AdminKeys) > 0 {
		adminKey = cfg.Auth.AdminKeys[0]
	}
	fmt.Fprintf(w, `
camgate demo is running (data in %s). Copy-paste:

  # Alice may watch and hear the demo camera:
  ffplay -rtsp_transport tcp "%s/demo?token=%s"
  # Alice's stream credential (a short user and password, for VLC, NVRs and
  # any player that cannot carry a token; ffmpeg cuts user:password at 127 bytes):
  ffplay -rtsp_transport tcp "rtsp://%s:%s@%s/demo"
  # NVR (Synology Surveillance Station, Blue Iris, …): add an RTSP camera,
  # host localhost port %s, path /demo, user %s, password %s

  # Bob may watch but not hear: his stream has no audio track.
  ffprobe -rtsp_transport tcp "%s/demo?token=%s"

  # In a browser — a share link valid for 24 h (WebRTC, HLS fallback):
  %s
  # HLS for players such as ffplay, VLC, Safari, hls.js:
  ffplay "%s/hls/demo/index.m3u8?token=%s"
  # A JPEG of the camera's latest keyframe (decoded by ffmpeg):
  curl -o demo.jpg "%s/cameras/demo/snapshot.jpg?token=%s"

  # The API (admin key):
  curl -H "Authorization: Bearer %s" %s/devices
  curl -H "Authorization: Bearer %s" "%s/check?subject=bob&device=demo&action=sound"
  # Let Bob hear the camera too:
  curl -X POST -H "Authorization: Bearer %s" -d '{"subject":"bob","device":"demo","actions":["sound"]}' %s/grants
  # Revoke Alice's grant: her open player stops within a fraction of a second.
  curl -X DELETE -H "Authorization: Bearer %s" %s/grants/demo-alice
  # Open sessions:
  curl -H "Authorization: Bearer %s" %s/sessions

  # More viewer tokens:  go run ./cmd/camgate token --sub alice --ttl 1h

Press Ctrl-C to stop.
`, cfg.DataDir, rtsp, alice, d.user, d.pass, hostPort(g.RTSPAddr()), rtspPort(g.RTSPAddr()), d.user, d.pass, rtsp, bob, d.shareURL, web, alice, api, alice,
		adminKey, api, adminKey, api, adminKey, api, adminKey, api, adminKey, api)
}

func mintToken(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	sub := fs.String("sub", "", "subject id the token names (required)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	if *ttl <= 0 {
		return errors.New("token: --ttl must be positive")
	}
	secret := cfg.Auth.ViewerJWT.HS256Secret
	if secret == "" {
		s, err := loadDemoSecrets(cfg.DataDir, false)
		if err != nil {
			return errors.New("token: no auth.viewer_jwt.hs256_secret configured (set CAMGATE_AUTH_VIEWER_JWT_HS256_SECRET, or run `camgate demo` once in this folder)")
		}
		secret = s.HS256Secret
	}
	v := &token.Verifier{HS256Secret: []byte(secret), Issuer: cfg.Auth.ViewerJWT.Issuer, Audience: cfg.Auth.ViewerJWT.Audience}
	if err := v.Initialize(); err != nil {
		return err
	}
	defer v.Close()
	tok, err := v.Mint(*sub, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
