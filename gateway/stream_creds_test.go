package gateway

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/redistest"
)

// streamCred is a created stream credential.
type streamCred struct{ id, user, pass string }

// createCred creates a stream credential through the API with bearer.
func createCred(t *testing.T, n *node, bearer, body string) streamCred {
	t.Helper()
	code, out := n.callAs(t, bearer, "POST", "/stream-credentials", body)
	if code != 201 {
		t.Fatalf("create stream credential %s: %d %v", body, code, out)
	}
	c := streamCred{id: fmt.Sprint(out["id"]), user: fmt.Sprint(out["username"]), pass: fmt.Sprint(out["password"])}
	if c.user == "" || len(c.pass) != 20 || c.id != c.user {
		t.Fatalf("created: %v", out)
	}
	return c
}

// credURL is rtsp://USER:PASS@host:port/camera, as an NVR or ffplay takes it.
func credURL(n *node, c streamCred, camera string) string {
	return "rtsp://" + c.user + ":" + c.pass + "@" + strings.TrimPrefix(n.rtsp, "rtsp://") + "/" + camera
}

// playURL plays an RTSP URL (credentials in it) with gortsplib's client,
// which answers whichever of Basic or Digest the server challenges with.
func playURL(t *testing.T, rawURL string) (*gortsplib.Client, error) {
	t.Helper()
	return dialRTSP(t, rawURL, nil)
}

// wrongPassword is pass with its last character changed (appending a fixed
// one would leave pass as it was whenever it already ends in it).
func wrongPassword(pass string) string {
	last := "x"
	if strings.HasSuffix(pass, last) {
		last = "y"
	}
	return pass[:len(pass)-1] + last
}

func aliceOnCam1(t *testing.T, n *node) {
	t.Helper()
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user","name":"Bob"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live","sound"]}`, 200)
	mustCall(t, n, "PUT", "/grants/g-bob", `{"subject":"bob","device":"cam1","actions":["live"]}`, 200)
}

// TestStreamCredentialWithFFprobe: ffprobe plays rtsp://USER:PASS@host/cam
// with a stream credential whichever scheme the server challenges with
// (Basic alone, Digest alone, both: ffmpeg then picks Digest); a wrong
// password is a 401 and changes nothing; the token-as-password path keeps
// working where Basic is offered.
func TestStreamCredentialWithFFprobe(t *testing.T) {
	for _, methods := range [][]string{{"basic"}, {"digest"}, {"basic", "digest"}} {
		t.Run(strings.Join(methods, "+"), func(t *testing.T) {
			n := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.RTSP.AuthMethods = methods })
			aliceOnCam1(t, n)
			c := createCred(t, n, testAdminKey, `{"subject":"alice","label":"hall NVR"}`)
			if got, err := probeCodecs(t, credURL(n, c, "cam1")); err != nil || got != "h264,opus" {
				t.Fatalf("alice's credential: %q %v", got, err)
			}
			bobs := createCred(t, n, testAdminKey, `{"subject":"bob"}`)
			if got, err := probeCodecs(t, credURL(n, bobs, "cam1")); err != nil || got != "h264" {
				t.Fatalf("bob's credential (no sound): %q %v", got, err)
			}
			wrong := c
			wrong.pass = wrongPassword(c.pass)
			if _, err := probeCodecs(t, credURL(n, wrong, "cam1")); err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("wrong password: %v, want 401", err)
			}
			if got, err := probeCodecs(t, credURL(n, c, "cam1")); err != nil || got != "h264,opus" {
				t.Fatalf("the credential after a wrong try: %q %v", got, err)
			}
			out := mustCall(t, n, "GET", "/stream-credentials?subject=alice", "", 200)
			list := out["stream_credentials"].([]any)
			if len(list) != 1 || strings.Contains(toJSON(list), c.pass) || list[0].(map[string]any)["label"] != "hall NVR" {
				t.Fatalf("list: %v", list)
			}
			tokenURL := "rtsp://viewer:" + viewerToken(t, "alice") + "@" + strings.TrimPrefix(n.rtsp, "rtsp://") + "/cam1"
			cl, err := playURL(t, tokenURL)
			if methods[0] == "basic" && len(methods) == 1 {
				if err != nil {
					t.Fatalf("token as the Basic password: %v", err)
				}
				cl.Close()
			} else if err == nil {
				cl.Close()
				t.Fatal("a token answered a Digest challenge")
			}
			if got, err := probeCodecs(t, n.rtsp+"/cam1?token="+viewerToken(t, "alice")); err != nil || got != "h264,opus" {
				t.Fatalf("?token= with %v offered: %q %v", methods, got, err)
			}
		})
	}
}

// TestStreamCredentialRevokeEndsSession: revoking a credential ends its
// open session at once and its next DESCRIBE is a 401; another credential
// of the same subject keeps playing.
func TestStreamCredentialRevokeEndsSession(t *testing.T) {
	for _, methods := range [][]string{{"basic"}, {"digest"}} {
		t.Run(methods[0], func(t *testing.T) {
			n := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.RTSP.AuthMethods = methods })
			aliceOnCam1(t, n)
			c1 := createCred(t, n, testAdminKey, `{"subject":"alice"}`)
			c2 := createCred(t, n, testAdminKey, `{"subject":"alice"}`)
			p1, err := playURL(t, credURL(n, c1, "cam1"))
			if err != nil {
				t.Fatal(err)
			}
			defer p1.Close()
			p2, err := playURL(t, credURL(n, c2, "cam1"))
			if err != nil {
				t.Fatal(err)
			}
			defer p2.Close()
			ss := n.g.Sessions().List()
			if len(ss) != 2 || ss[0].Subject != "alice" || ss[0].Credential == "" {
				t.Fatalf("sessions: %+v", ss)
			}
			mustCall(t, n, "DELETE", "/stream-credentials/"+c1.id, "", 200)
			waitClientEnded(t, p1, "after its credential was revoked")
			if l := n.g.Sessions().List(); len(l) != 1 || l[0].Credential != c2.id {
				t.Fatalf("sessions after the revoke: %+v", l)
			}
			if _, err := probeCodecs(t, credURL(n, c1, "cam1")); err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("revoked credential: %v, want 401", err)
			}
			if code, _ := n.call(t, "DELETE", "/stream-credentials/"+c1.id, ""); code != 404 {
				t.Fatalf("second revoke: %d", code)
			}
		})
	}
}

// TestStreamCredentialDecidedAsItsSubject: a credential is worth what its
// subject's token is: 403 on a camera alice may not see (as her token), and
// her session ends when her grant is revoked.
func TestStreamCredentialDecidedAsItsSubject(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) {
		c.Cameras = append(c.Cameras, config.Camera{ID: "cam2", Site: "hq", Source: "builtin:demo"})
	})
	aliceOnCam1(t, n)
	c := createCred(t, n, testAdminKey, `{"subject":"alice"}`)
	tokenStatus := rtspDescribe(t, n, "cam2", viewerToken(t, "alice"))
	_, err := probeCodecs(t, credURL(n, c, "cam2"))
	if tokenStatus != 403 || err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("cam2: token %d, credential %v; want 403 for both", tokenStatus, err)
	}
	if _, err := probeCodecs(t, credURL(n, c, "nope")); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown camera: %v, want 404", err)
	}
	p, err := playURL(t, credURL(n, c, "cam1"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mustCall(t, n, "DELETE", "/grants/g-alice", "", 200)
	waitClientEnded(t, p, "after alice's grant was revoked")
	if _, err := probeCodecs(t, credURL(n, c, "cam1")); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("credential without a grant: %v, want 403", err)
	}
}

// TestStreamCredentialWhoMayManage: a viewer manages only its own
// credentials; a refused create or revoke changes nothing; admins need the
// subjects sections.
func TestStreamCredentialWhoMayManage(t *testing.T) {
	n := startNode(t, t.TempDir())
	aliceOnCam1(t, n)
	alice, bob := viewerToken(t, "alice"), viewerToken(t, "bob")
	own := createCred(t, n, alice, `{"subject":"alice"}`)
	if got, err := probeCodecs(t, credURL(n, own, "cam1")); err != nil || got != "h264,opus" {
		t.Fatalf("alice's own credential: %q %v", got, err)
	}
	if code, out := n.callAs(t, alice, "POST", "/stream-credentials", `{"subject":"bob"}`); code != 403 {
		t.Fatalf("alice creating bob's credential: %d %v", code, out)
	}
	bobs := createCred(t, n, bob, `{"subject":"bob"}`)
	if code, _ := n.callAs(t, alice, "DELETE", "/stream-credentials/"+bobs.id, ""); code != 403 {
		t.Fatalf("alice revoking bob's credential: %d", code)
	}
	if code, _ := n.callAs(t, alice, "GET", "/stream-credentials?subject=bob", ""); code != 403 {
		t.Fatalf("alice listing bob's: %d", code)
	}
	out := mustCall(t, n, "GET", "/stream-credentials", "", 200)
	if l := out["stream_credentials"].([]any); len(l) != 2 {
		t.Fatalf("after the refusals the store has %d credentials: %v", len(l), l)
	}
	if _, err := probeCodecs(t, credURL(n, bobs, "cam1")); err != nil {
		t.Fatalf("bob's credential after alice's refused revoke: %v", err)
	}
	_, mine := n.callAs(t, alice, "GET", "/stream-credentials", "")
	if l := mine["stream_credentials"].([]any); len(l) != 1 || l[0].(map[string]any)["id"] != own.id {
		t.Fatalf("alice lists %v", l)
	}
	if code, _ := n.callAs(t, alice, "DELETE", "/stream-credentials/"+own.id, ""); code != 200 {
		t.Fatalf("alice revoking her own: %d", code)
	}

	// An admin whose role reads subjects may list but not create or revoke.
	mustCall(t, n, "PUT", "/roles/reader", `{"sections":["subjects:read"]}`, 200)
	adm := mustCall(t, n, "POST", "/admins", `{"roles":["reader"]}`, 201)
	key := adm["key"].(string)
	if code, out := n.callAs(t, key, "POST", "/stream-credentials", `{"subject":"alice"}`); code != 403 {
		t.Fatalf("reader admin creating: %d %v", code, out)
	}
	if code, _ := n.callAs(t, key, "DELETE", "/stream-credentials/"+bobs.id, ""); code != 403 {
		t.Fatalf("reader admin revoking: %d", code)
	}
	if code, out := n.callAs(t, key, "GET", "/stream-credentials?subject=bob", ""); code != 200 || len(out["stream_credentials"].([]any)) != 1 {
		t.Fatalf("reader admin listing: %d %v", code, out)
	}

	for body, field := range map[string]string{
		`{"subject":"alice","password":"x"}`: "password",
		`{}`:                                 "subject",
		`{"subject":"alice","link":"l1"}`:    "link",
		`{"subject":"carol"}`:                "subject",
		`{"subject":"alice","not_after":"2020-01-01T00:00:00Z"}`: "not_after",
		`{"subject":"alice","not_after":"tomorrow"}`:             "not_after",
		`{"subject":"alice","subject":"bob"}`:                    "subject",
	} {
		code, out := n.call(t, "POST", "/stream-credentials", body)
		if msg := fmt.Sprint(out["error"]); code != 400 || !strings.Contains(msg, field) {
			t.Errorf("%s: %d %q, want 400 naming %s", body, code, msg, field)
		}
	}
	if l := mustCall(t, n, "GET", "/stream-credentials", "", 200)["stream_credentials"].([]any); len(l) != 1 {
		t.Fatalf("bad bodies changed the store: %v", l)
	}
}

// TestStreamCredentialOfALink: a credential bound to a share link is worth
// the link: its camera only, and it ends when the link is disabled.
func TestStreamCredentialOfALink(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) {
		c.Cameras = append(c.Cameras, config.Camera{ID: "cam2", Site: "hq", Source: "builtin:demo"})
	})
	window := `"not_before":"` + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + `","not_after":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"`
	link := mustCall(t, n, "POST", "/links", `{"device":"cam1","actions":["live"],`+window+`}`, 201)
	id := link["id"].(string)
	c := createCred(t, n, testAdminKey, `{"link":"`+id+`"}`)
	if got, err := probeCodecs(t, credURL(n, c, "cam1")); err != nil || got != "h264" {
		t.Fatalf("link credential: %q %v", got, err)
	}
	if _, err := probeCodecs(t, credURL(n, c, "cam2")); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("link credential on another camera: %v, want 403", err)
	}
	p, err := playURL(t, credURL(n, c, "cam1"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mustCall(t, n, "POST", "/links/"+id+"/disable", "", 200)
	waitClientEnded(t, p, "after the link was disabled")
	if code, _ := n.callAs(t, viewerToken(t, "alice"), "POST", "/stream-credentials", `{"link":"`+id+`"}`); code != 404 {
		t.Fatalf("a viewer creating a credential for someone else's link: %d", code)
	}
}

// TestStreamCredentialAcrossRedisNodes: a credential created on node A
// admits on node B (Digest too, B holding the same key file), and revoking
// it on A ends its session on B at once.
func TestStreamCredentialAcrossRedisNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	cfg := func(c *config.Config) { c.Redis.URL = srv.URL; c.RTSP.AuthMethods = []string{"digest"} }
	a := startNodeWith(t, t.TempDir(), cfg)
	dirB := t.TempDir()
	key, err := os.ReadFile(filepath.Join(a.g.Config.DataDir, "stream-credentials.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "stream-credentials.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startNodeWith(t, dirB, cfg)
	aliceOnCam1(t, a)
	c := createCred(t, a, testAdminKey, `{"subject":"alice"}`)
	p, err := playURL(t, credURL(b, c, "cam1"))
	if err != nil {
		t.Fatalf("credential made on A, Digest on B: %v", err)
	}
	defer p.Close()
	if l := mustCall(t, b, "GET", "/stream-credentials", "", 200)["stream_credentials"].([]any); len(l) != 1 {
		t.Fatalf("B lists %v", l)
	}
	mustCall(t, a, "DELETE", "/stream-credentials/"+c.id, "", 200)
	waitClientEnded(t, p, "viewer on B after the credential was revoked on A")
	if _, err := probeCodecs(t, credURL(b, c, "cam1")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("revoked on A, DESCRIBE on B: %v, want 401", err)
	}
}

// rtspChallenge sends a DESCRIBE without credentials on a new connection and
// returns the WWW-Authenticate values of the 401.
func rtspChallenge(t *testing.T, n *node) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(n.rtsp, "rtsp://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "DESCRIBE %s/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n", n.rtsp)
	r := bufio.NewReader(c)
	var out []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			return out
		}
		if v, ok := strings.CutPrefix(line, "WWW-Authenticate: "); ok {
			out = append(out, v)
		}
	}
}

// TestRTSPChallengeFollowsAuthMethods: the 401 challenges with exactly the
// configured schemes, in camgate's realm, with a fresh nonce per connection.
func TestRTSPChallengeFollowsAuthMethods(t *testing.T) {
	basic := startNode(t, t.TempDir())
	if got := rtspChallenge(t, basic); len(got) != 1 || got[0] != `Basic realm="camgate"` {
		t.Fatalf("default challenge: %q", got)
	}
	both := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.RTSP.AuthMethods = []string{"basic", "digest"} })
	first, second := rtspChallenge(t, both), rtspChallenge(t, both)
	if len(first) != 2 || first[0] != `Basic realm="camgate"` || !strings.HasPrefix(first[1], `Digest realm="camgate", nonce="`) {
		t.Fatalf("basic+digest challenge: %q", first)
	}
	if first[1] == second[1] {
		t.Fatalf("two connections got the same nonce: %q", first[1])
	}
}

// rtspDescribeBasic sends one DESCRIBE with a Basic Authorization header
// and returns the status.
func rtspDescribeBasic(t *testing.T, n *node, camera, user, pass string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(n.rtsp, "rtsp://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "DESCRIBE %s/%s RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic %s\r\n\r\n", n.rtsp, camera,
		base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var code int
	if _, err := fmt.Sscanf(line, "RTSP/1.0 %d", &code); err != nil {
		t.Fatalf("status line %q", line)
	}
	return code
}

// TestStreamCredentialGuessesAreLimited: wrong passwords count against the
// client's failure budget like bad tokens (then 429, the right password
// included), and a Digest-only server refuses a right password sent with
// Basic.
func TestStreamCredentialGuessesAreLimited(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.Limits.AuthFailuresPerMinute = 3 })
	aliceOnCam1(t, n)
	c := createCred(t, n, testAdminKey, `{"subject":"alice"}`)
	if code := rtspDescribeBasic(t, n, "cam1", c.user, c.pass); code != 200 {
		t.Fatalf("right password: %d", code)
	}
	for i := range 3 {
		if code := rtspDescribeBasic(t, n, "cam1", c.user, fmt.Sprintf("WrongPassword%07d", i)); code != 401 {
			t.Fatalf("guess %d: %d, want 401", i+1, code)
		}
	}
	if code := rtspDescribeBasic(t, n, "cam1", c.user, c.pass); code != 429 {
		t.Fatalf("right password after 3 guesses: %d, want 429", code)
	}

	d := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.RTSP.AuthMethods = []string{"digest"} })
	aliceOnCam1(t, d)
	dc := createCred(t, d, testAdminKey, `{"subject":"alice"}`)
	if code := rtspDescribeBasic(t, d, "cam1", dc.user, dc.pass); code != 401 {
		t.Fatalf("Basic on a Digest-only server: %d, want 401", code)
	}
}
