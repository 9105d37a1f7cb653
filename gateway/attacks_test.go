package gateway

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/poll"
)

// Red-team attacks through the real edges: the HTTP API answers today's
// new viewer and admin rules with the status authz decides, and a stream
// credential gets the RTSP status its subject's token gets.

// TestAttackViewerWritesSameStatusAtTheHTTPEdge: a site admin's grant to a
// group holding herself, a settings holder repointing the camera, a
// company editing another company's employee and an individual-access
// admin editing another admin's role are 403 through the API, and nothing
// is stored.
func TestAttackViewerWritesSameStatusAtTheHTTPEdge(t *testing.T) {
	n := startNode(t, t.TempDir())
	for _, s := range []string{
		`/subjects/alice {"kind":"user"}`, `/subjects/carol {"kind":"user"}`,
		`/subjects/monco {"kind":"company"}`, `/subjects/otherco {"kind":"company"}`,
		`/subjects/ivan {"kind":"employee","company":"otherco","rights":["live"]}`,
		`/groups/crew {"members":["alice","carol"]}`,
		`/grants/sa {"subject":"alice","site":"hq","role":"site_admin"}`,
		`/roles/ind {"sections":["roles:write","grants:write","subjects:write"],"individual_access":true}`,
		`/roles/guard {"actions":["live"]}`,
		`/grants/g-carol {"subject":"carol","device":"cam1","role":"guard"}`,
	} {
		path, body, _ := strings.Cut(s, " ")
		mustCall(t, n, "PUT", path, body, 200)
	}
	ind := mustCall(t, n, "POST", "/admins", `{"roles":["ind"]}`, 201)["key"].(string)
	alice, monco := viewerToken(t, "alice"), viewerToken(t, "monco")
	before := mustCall(t, n, "GET", "/devices/cam1", "", 200)
	for _, a := range []struct{ name, bearer, method, path, body string }{
		{"site admin: a grant to a group holding herself", alice, "PUT", "/grants/x", `{"subject":"crew","site":"hq","role":"site_admin"}`},
		{"settings holder: repoint the source", alice, "PUT", "/devices/cam1", `{"source":"rtsp://10.9.9.9/x"}`},
		{"settings holder: move the camera", alice, "PUT", "/devices/cam1", `{"site":"elsewhere"}`},
		{"company: another company's employee", monco, "PUT", "/subjects/ivan", `{"rights":["live","archive"]}`},
		{"company: a new employee of its own", monco, "PUT", "/subjects/newguy", `{"kind":"employee","company":"monco"}`},
		{"individual-access admin: root's role root's grant uses", ind, "PUT", "/roles/guard", `{"actions":["live","archive","download"]}`},
	} {
		if code, out := n.callAs(t, a.bearer, a.method, a.path, a.body); code != 403 {
			t.Errorf("%s: %s %s → %d %v, want 403", a.name, a.method, a.path, code, out)
		}
	}
	if code, _ := n.call(t, "GET", "/grants/x", ""); code != 404 {
		t.Errorf("a refused grant was stored: GET → %d", code)
	}
	if code, _ := n.call(t, "GET", "/subjects/newguy", ""); code != 404 {
		t.Errorf("a refused subject was stored: GET → %d", code)
	}
	if after := mustCall(t, n, "GET", "/devices/cam1", "", 200); toJSON(after) != toJSON(before) {
		t.Errorf("cam1 changed: %v → %v", before, after)
	}
	if r := mustCall(t, n, "GET", "/roles/guard", "", 200); toJSON(r["actions"]) != `["live"]` {
		t.Errorf("role guard after the refused edit: %v", r)
	}
	if s := mustCall(t, n, "GET", "/subjects/ivan", "", 200); toJSON(s["rights"]) != `["live"]` {
		t.Errorf("ivan after the refused edit: %v", s)
	}
	// A viewer without settings reads no camera, existing or not (404 as
	// authz answers); the settings holder reads hers back.
	for _, cam := range []string{"cam1", "no-such-cam"} {
		if code, _ := n.callAs(t, viewerToken(t, "carol"), "GET", "/devices/"+cam, ""); code != 404 {
			t.Errorf("carol reading device %s: %d, want 404", cam, code)
		}
	}
	if code, _ := n.callAs(t, alice, "GET", "/devices/cam1", ""); code != 200 {
		t.Errorf("the site admin reading cam1 back: %d", code)
	}
	// The RTSP edge agrees: carol's access did not grow, alice's is hers.
	if code := rtspDescribe(t, n, "cam1", viewerToken(t, "carol")); code != 200 {
		t.Errorf("carol on cam1: %d", code)
	}
}

// digestAnswer is the RFC 2617 (no qop) answer the server checks.
func digestAnswer(user, pass, nonce, method, uri string) string {
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	return h(h(user+":camgate:"+pass) + ":" + nonce + ":" + h(method+":"+uri))
}

// rtspConn is one RTSP connection that sends DESCRIBEs and reads statuses
// and the Digest nonce of its 401.
type rtspConn struct {
	c net.Conn
	r *bufio.Reader
	n int
}

func openRTSPConn(t *testing.T, n *node) *rtspConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(n.rtsp, "rtsp://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rtspConn{c: c, r: bufio.NewReader(c)}
}

// describe sends a DESCRIBE with an optional Authorization header and
// returns the status and the Digest nonce, if challenged with one.
func (rc *rtspConn) describe(t *testing.T, url, authz string) (int, string) {
	t.Helper()
	rc.n++
	hdr := ""
	if authz != "" {
		hdr = "Authorization: " + authz + "\r\n"
	}
	fmt.Fprintf(rc.c, "DESCRIBE %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n", url, rc.n, hdr)
	code, nonce, length := 0, "", 0
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		if code == 0 {
			fmt.Sscanf(line, "RTSP/1.0 %d", &code)
		}
		if _, v, ok := strings.Cut(line, `nonce="`); ok && strings.HasPrefix(line, "WWW-Authenticate: Digest") {
			nonce, _, _ = strings.Cut(v, `"`)
		}
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			fmt.Sscan(v, &length)
		}
	}
	if _, err := rc.r.Discard(length); err != nil {
		t.Fatal(err)
	}
	return code, nonce
}

func digestHeader(user, nonce, uri, response string) string {
	return fmt.Sprintf(`Digest username="%s", realm="camgate", nonce="%s", uri="%s", response="%s"`, user, nonce, uri, response)
}

// TestAttackStreamCredentials: a Digest answer made for one connection's
// nonce is refused on another (replayed or with the other's nonce), an
// unknown user name is a 401 like a wrong password, an expired credential
// is a 401, and a deleted subject's credential gets the 403 its token gets.
func TestAttackStreamCredentials(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.RTSP.AuthMethods = []string{"digest", "basic"} })
	aliceOnCam1(t, n)
	c := createCred(t, n, testAdminKey, `{"subject":"alice"}`)
	url := n.rtsp + "/cam1"

	// Each attempt is on a new connection (the server closes one after a
	// refused answer), which has its own nonce.
	a := openRTSPConn(t, n)
	_, nonceA := a.describe(t, url, "")
	answerA := digestHeader(c.user, nonceA, url, digestAnswer(c.user, c.pass, nonceA, "DESCRIBE", url))
	for _, x := range []struct {
		name   string
		header func(nonce string) string
	}{
		{"A's answer replayed on another connection", func(string) string { return answerA }},
		{"the other's nonce with A's response", func(nonce string) string {
			return digestHeader(c.user, nonce, url, digestAnswer(c.user, c.pass, nonceA, "DESCRIBE", url))
		}},
		{"a right answer for another realm", func(nonce string) string {
			return strings.Replace(digestHeader(c.user, nonce, url, digestAnswer(c.user, c.pass, nonce, "DESCRIBE", url)), `realm="camgate"`, `realm="other"`, 1)
		}},
		{"an answer for another camera's uri", func(nonce string) string {
			u := n.rtsp + "/cam9"
			return digestHeader(c.user, nonce, u, digestAnswer(c.user, c.pass, nonce, "DESCRIBE", u))
		}},
		{"a user name that does not exist", func(nonce string) string {
			return digestHeader("sc_nobody0000000000", nonce, url, digestAnswer("sc_nobody0000000000", c.pass, nonce, "DESCRIBE", url))
		}},
		{"a wrong password", func(nonce string) string {
			return digestHeader(c.user, nonce, url, digestAnswer(c.user, wrongPassword(c.pass), nonce, "DESCRIBE", url))
		}},
	} {
		b := openRTSPConn(t, n)
		_, nonceB := b.describe(t, url, "")
		if nonceB == "" || nonceB == nonceA {
			t.Fatalf("nonces %q %q", nonceA, nonceB)
		}
		if code, _ := b.describe(t, url, x.header(nonceB)); code != 401 {
			t.Errorf("%s: %d, want 401", x.name, code)
		}
	}
	if code, _ := a.describe(t, url, answerA); code != 200 {
		t.Fatalf("the right answer on its own connection: %d", code)
	}
	if code := rtspDescribeBasic(t, n, "cam1", "sc_nobody0000000000", c.pass); code != 401 {
		t.Errorf("Basic with an unknown user: %d, want 401", code)
	}

	// A stream credential is for RTSP only: not an API or HLS bearer, not
	// an API Basic login.
	for _, bearer := range []string{c.pass, c.user + ":" + c.pass} {
		if code, _ := n.callAs(t, bearer, "GET", "/stream-credentials", ""); code != 401 {
			t.Errorf("the credential as an API bearer: %d, want 401", code)
		}
	}
	req, _ := http.NewRequest("GET", n.api+"/stream-credentials", nil)
	req.SetBasicAuth(c.user, c.pass)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 401 {
		t.Errorf("the credential as API Basic: %v %v, want 401", res.StatusCode, err)
	} else {
		res.Body.Close()
	}
	hls := strings.TrimSuffix(n.api, "/api/v1") + "/hls/cam1/index.m3u8"
	if code, _, _ := httpStatus(t, "GET", hls, c.pass, ""); code != 401 {
		t.Errorf("the credential as an HLS bearer: %d, want 401", code)
	}
	if code, _, _ := httpStatus(t, "GET", hls+"?token="+c.pass, "", ""); code != 401 {
		t.Errorf("the credential as an HLS ?token=: %d, want 401", code)
	}

	// Expired: a credential whose not_after passes stops admitting.
	short := createCred(t, n, testAdminKey, `{"subject":"alice","not_after":"`+time.Now().Add(1500*time.Millisecond).UTC().Format(time.RFC3339Nano)+`"}`)
	if code := rtspDescribeBasic(t, n, "cam1", short.user, short.pass); code != 200 {
		t.Fatalf("short credential before expiry: %d", code)
	}
	poll.Within(t, 10*time.Second, "the expired credential to be refused", func() bool {
		return rtspDescribeBasic(t, n, "cam1", short.user, short.pass) == 401
	})

	// A deleted subject's credentials are revoked with it: refused at
	// once, and not brought back by a new subject of the same id (its old
	// tokens are refused while it is gone, as before).
	mustCall(t, n, "DELETE", "/subjects/alice", "", 200)
	if tok := rtspDescribe(t, n, "cam1", viewerToken(t, "alice")); tok != 403 {
		t.Errorf("deleted subject's token: %d, want 403", tok)
	}
	poll.Until(t, "the deleted subject's credential to be revoked", func() bool {
		return rtspDescribeBasic(t, n, "cam1", c.user, c.pass) == 401
	})
	if code, _ := n.callAs(t, viewerToken(t, "bob"), "DELETE", "/stream-credentials/"+c.id, ""); code != 403 && code != 404 {
		t.Errorf("bob revoking a deleted subject's credential: %d, want 403 or 404", code)
	}
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice-again", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	if code := rtspDescribeBasic(t, n, "cam1", c.user, c.pass); code != 401 {
		t.Errorf("the old credential of a recreated alice: %d, want 401 (revoked with the subject)", code)
	}
}

// TestAttackScenarioPhotoRefusalOrder: who may store comes before whether
// the site runs scenarios, so the 409 (which says how the site is set up)
// is no oracle: a viewer gets 403 and an individual-access admin 404 for a
// device it does not see, and nothing is stored.
func TestAttackScenarioPhotoRefusalOrder(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	mustCall(t, n, "PUT", "/devices/motion1", `{"site":"hq","kind":"motion_cam"}`, 200)
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"motion1","actions":["photo_on_demand","photo_view"]}`, 200)
	mustCall(t, n, "PUT", "/roles/integration", `{"sections":["devices:write"],"individual_access":true}`, 200)
	ind := mustCall(t, n, "POST", "/admins", `{"roles":["integration"]}`, 201)["key"].(string)
	url := strings.TrimSuffix(n.api, "/api/v1") + "/api/v1/devices/motion1/objects?kind=photo&scenario=door"
	jpeg := "\xff\xd8\xff\xe0" + strings.Repeat("x", 64)
	for _, a := range []struct {
		name, bearer string
		want         int
	}{
		{"a viewer with photo rights", viewerToken(t, "alice"), 403},
		{"an individual-access admin not seeing the device", ind, 404},
		{"the root key, scenarios off", testAdminKey, 409},
	} {
		if code, _, body := httpStatusType(t, "POST", url, a.bearer, jpeg, "image/jpeg"); code != a.want {
			t.Errorf("%s: %d %s, want %d", a.name, code, body, a.want)
		}
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(p, "motion1") && strings.HasSuffix(p, ".json") {
			t.Errorf("a refused photo was stored: %s", p)
		}
		return nil
	})
}

// TestAttackSettingsNameOnTheSharePage: a settings holder (site admin,
// installer in its 8 hours) now names cameras, and the name is shown on
// share-link pages other people open: markup in it is text there.
func TestAttackSettingsNameOnTheSharePage(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/sa", `{"subject":"alice","site":"hq","role":"site_admin"}`, 200)
	evil := `</title><script>alert(1)</script><img src=x onerror=alert(2)>"'`
	if code, out := n.callAs(t, viewerToken(t, "alice"), "PUT", "/devices/cam1", `{"name":`+toJSON(evil)+`}`); code != 200 {
		t.Fatalf("the site admin naming cam1: %d %v", code, out)
	}
	window := `"not_before":"` + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + `","not_after":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"`
	link := mustCall(t, n, "POST", "/links", `{"device":"cam1","actions":["live"],`+window+`}`, 201)
	_, path, _ := strings.Cut(strings.TrimPrefix(link["url"].(string), "http://"), "/")
	code, hdr, body := httpStatus(t, "GET", strings.TrimSuffix(n.api, "/api/v1")+"/"+path, "", "")
	if code != 200 {
		t.Fatalf("share page: %d", code)
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;script&gt;alert(1)") {
		t.Fatalf("the camera's name reaches the page as markup:\n%s", body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("share page CSP %q", csp)
	}
}

// TestAttackLinkCredentialParity: a share link's stream credential gets
// the RTSP status the link's token gets, on another camera, disabled and
// deleted.
func TestAttackLinkCredentialParity(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) {
		c.Cameras = append(c.Cameras, config.Camera{ID: "cam2", Site: "hq", Source: "builtin:demo"})
	})
	window := `"not_before":"` + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + `","not_after":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"`
	link := mustCall(t, n, "POST", "/links", `{"device":"cam1","actions":["live"],`+window+`}`, 201)
	id, tok := link["id"].(string), link["token"].(string)
	c := createCred(t, n, testAdminKey, `{"link":"`+id+`"}`)
	for _, step := range []struct {
		name, camera string
		do           func()
	}{
		{"active", "cam1", func() {}},
		{"another camera", "cam2", func() {}},
		{"disabled", "cam1", func() { mustCall(t, n, "POST", "/links/"+id+"/disable", "", 200) }},
		{"deleted", "cam1", func() { mustCall(t, n, "DELETE", "/links/"+id, "", 200) }},
	} {
		step.do()
		byToken := rtspDescribe(t, n, step.camera, tok)
		byCred := rtspDescribeBasic(t, n, step.camera, c.user, c.pass)
		if byToken != byCred {
			t.Errorf("%s: link token %d, its credential %d; want the same", step.name, byToken, byCred)
		}
		t.Logf("%s: %d", step.name, byToken)
	}
}

// TestAttackStreamCredentialFlood: a viewer token creates its own
// credentials, so a stolen or scripted one cannot grow the store without
// end: past the per-owner bound it is a 409 and nothing is stored.
func TestAttackStreamCredentialFlood(t *testing.T) {
	n := startNode(t, t.TempDir())
	aliceOnCam1(t, n)
	alice := viewerToken(t, "alice")
	max := n.g.StreamCredentials().MaxPerOwner
	for i := range max {
		if code, out := n.callAs(t, alice, "POST", "/stream-credentials", `{"subject":"alice"}`); code != 201 {
			t.Fatalf("credential %d of %d: %d %v", i+1, max, code, out)
		}
	}
	code, out := n.callAs(t, alice, "POST", "/stream-credentials", `{"subject":"alice"}`)
	if code != 409 || !strings.Contains(fmt.Sprint(out["error"]), "revoke") {
		t.Fatalf("one more: %d %v, want 409 saying to revoke", code, out)
	}
	if l := mustCall(t, n, "GET", "/stream-credentials?subject=alice", "", 200)["stream_credentials"].([]any); len(l) != max {
		t.Fatalf("alice holds %d credentials, want %d", len(l), max)
	}
	createCred(t, n, viewerToken(t, "bob"), `{"subject":"bob"}`) // others are not affected
}

// An individual-access admin creating a stream credential learns nothing
// of subjects it does not see: a missing subject and another admin's are
// the same 404, and nothing is stored.
func TestAttackStreamCredentialNoSubjectOracle(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/roles/ind", `{"sections":["subjects:write"],"individual_access":true}`, 200)
	ind := mustCall(t, n, "POST", "/admins", `{"roles":["ind"]}`, 201)["key"].(string)
	hidden, _ := n.callAs(t, ind, "POST", "/stream-credentials", `{"subject":"alice"}`)
	missing, _ := n.callAs(t, ind, "POST", "/stream-credentials", `{"subject":"nobody"}`)
	if hidden != 404 || missing != 404 {
		t.Fatalf("individual-access admin: hidden subject %d, missing subject %d; want 404 for both", hidden, missing)
	}
	if code, _ := n.call(t, "POST", "/stream-credentials", `{"subject":"nobody"}`); code != 400 {
		t.Fatalf("root, missing subject: %d, want 400 naming subject", code)
	}
	if out := mustCall(t, n, "GET", "/stream-credentials", "", 200); len(out["stream_credentials"].([]any)) != 0 {
		t.Fatalf("refused creates stored %v", out)
	}
}
