package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/whepclient"
)

// Attacker-style tests of issue 15: every refusal is tried through every
// edge a viewer can reach (RTSP, HLS, WHEP, archive, API), and must get
// the same status everywhere.

// rtspDescribe sends one RTSP DESCRIBE and returns the status code.
func rtspDescribe(t *testing.T, n *node, camera, tok string) int {
	t.Helper()
	return rtspDescribeFrom(t, n, "", camera, tok)
}

// rtspDescribeFrom is rtspDescribe from the local address ip ("": any).
func rtspDescribeFrom(t *testing.T, n *node, ip, camera, tok string) int {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	c, err := d.Dial("tcp", strings.TrimPrefix(n.rtsp, "rtsp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	url := n.rtsp + "/" + camera
	if tok != "" {
		url += "?token=" + tok
	}
	fmt.Fprintf(c, "DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n", url)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("RTSP DESCRIBE: %v", err)
	}
	var code int
	if _, err := fmt.Sscanf(line, "RTSP/1.0 %d", &code); err != nil {
		t.Fatalf("RTSP status line %q", line)
	}
	return code
}

func httpStatus(t *testing.T, method, url, bearer, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if method == "POST" && strings.Contains(url, "/whep/") {
		req.Header.Set("Content-Type", "application/sdp")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// whepOffer is a real browser-like recvonly offer (pion), so that WHEP
// refuses for the credential and not for the SDP.
func whepOffer(t *testing.T) string {
	t.Helper()
	api, err := whepclient.API(nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := whepclient.RecvOnly(api)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// edgeStatuses tries one credential on one camera through every viewer
// edge and returns the status each answered.
func edgeStatuses(t *testing.T, n *node, camera, tok, offer string) map[string]int {
	t.Helper()
	base := strings.TrimSuffix(n.api, "/api/v1")
	out := map[string]int{"rtsp": rtspDescribe(t, n, camera, tok)}
	out["hls"], _, _ = httpStatus(t, "GET", base+"/hls/"+camera+"/index.m3u8?token="+tok, "", "")
	out["whep"], _, _ = httpStatus(t, "POST", base+"/whep/"+camera, tok, offer)
	now := time.Now().UTC()
	q := "?start=" + now.Add(-time.Hour).Format(time.RFC3339) + "&end=" + now.Format(time.RFC3339) + "&token=" + tok
	out["archive"], _, _ = httpStatus(t, "GET", base+"/archive/"+camera+"/index.m3u8"+q, "", "")
	out["snapshot"], _, _ = httpStatus(t, "GET", base+"/api/v1/cameras/"+camera+"/snapshot.jpg?token="+tok, "", "")
	out["snapshot at"], _, _ = httpStatus(t, "GET", base+"/api/v1/cameras/"+camera+"/snapshot.jpg?at="+now.Add(-time.Minute).Format(time.RFC3339)+"&token="+tok, "", "")
	return out
}

func TestAdmissionErrorsSameStatusOnEveryEdge(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user","name":"Bob"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live","archive"]}`, 200)
	offer := whepOffer(t)
	cases := []struct {
		name, camera, token string
		want                int
	}{
		{"unauthenticated (forged token)", "cam1", viewerToken(t, "alice") + "x", 401},
		{"denied (no grant)", "cam1", viewerToken(t, "bob"), 403},
		{"unknown camera", "nocam", viewerToken(t, "alice"), 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for edge, got := range edgeStatuses(t, n, c.camera, c.token, offer) {
				if got != c.want {
					t.Errorf("%s answered %d, want %d like every other edge", edge, got, c.want)
				}
			}
		})
	}
}

// A share link at its max_viewers is 429 on every live edge, so the viewer
// page can say "too many viewers" whatever protocol it tried.
func TestFullLinkIs429OnEveryLiveEdge(t *testing.T) {
	n := startNode(t, t.TempDir())
	_, out := n.call(t, "POST", "/links", fmt.Sprintf(`{"device":"cam1","actions":["live"],"not_after":%q,"max_viewers":1}`,
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	tok, _ := out["token"].(string)
	if tok == "" {
		t.Fatalf("link: %v", out)
	}
	base := strings.TrimSuffix(n.api, "/api/v1")
	if code, _, body := httpStatus(t, "GET", base+"/hls/cam1/index.m3u8?token="+tok, "", ""); code != 200 {
		t.Fatalf("first viewer (HLS): %d %s", code, body)
	}
	offer := whepOffer(t)
	got := map[string]int{"rtsp": rtspDescribe(t, n, "cam1", tok)}
	code, hdr, _ := httpStatus(t, "GET", base+"/hls/cam1/index.m3u8?token="+tok, "", "")
	got["hls"] = code
	if code == 429 && hdr.Get("Retry-After") == "" {
		t.Error("HLS 429 without Retry-After")
	}
	got["whep"], _, _ = httpStatus(t, "POST", base+"/whep/cam1", tok, offer)
	got["snapshot"], _, _ = httpStatus(t, "GET", base+"/api/v1/cameras/cam1/snapshot.jpg?token="+tok, "", "")
	for edge, c := range got {
		if c != 429 {
			t.Errorf("%s answered %d for a full link, want 429", edge, c)
		}
	}
}

// One failure limiter, keyed by client IP, on every edge: an IP that
// guessed on RTSP is refused on HLS, WHEP, the archive, the share page and
// the API too — even with valid credentials — and admin-key guessing on the
// API counts the same way.
func TestFailureLimiterCoversEveryEdge(t *testing.T) {
	for _, first := range []string{"rtsp", "api"} {
		t.Run("guessing on "+first, func(t *testing.T) {
			n := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.Limits.AuthFailuresPerMinute = 3 })
			mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
			mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live","archive"]}`, 200)
			good := viewerToken(t, "alice")
			offer := whepOffer(t)
			for i := range 3 {
				switch first {
				case "rtsp":
					if code := rtspDescribe(t, n, "cam1", good+"x"); code != 401 {
						t.Fatalf("guess %d: %d, want 401", i, code)
					}
				case "api":
					if code, _ := n.callAs(t, "cg_admin_guess_"+fmt.Sprint(i), "GET", "/devices", ""); code != 401 {
						t.Fatalf("guess %d: %d, want 401", i, code)
					}
				}
			}
			for edge, code := range edgeStatuses(t, n, "cam1", good, offer) {
				if code != 429 {
					t.Errorf("%s answered %d to a blocked IP with a valid token, want 429", edge, code)
				}
			}
			if code, _ := n.callAs(t, testAdminKey, "GET", "/devices", ""); code != 429 {
				t.Errorf("API answered %d to a blocked IP with the admin key, want 429", code)
			}
		})
	}
}

// Hole 1: individual access scopes links like every other kind.
func TestIndividualAccessScopesLinks(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/roles/linker", `{"actions":[],"sections":["devices:write","links:write"],"individual_access":true}`, 200)
	a1 := mustCall(t, n, "PUT", "/admins/a1", `{"roles":["linker"]}`, 200)["key"].(string)
	a2 := mustCall(t, n, "PUT", "/admins/a2", `{"roles":["linker"]}`, 200)["key"].(string)
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	link := func(dev string) string {
		return fmt.Sprintf(`{"device":%q,"actions":["live","download","sound"],"not_after":%q}`, dev, until)
	}

	// cam1 was made by root: invisible to a1, so no link either.
	if code, _ := n.callAs(t, a1, "GET", "/devices/cam1", ""); code != 404 {
		t.Fatalf("GET /devices/cam1 as a1: %d, want 404", code)
	}
	if code, out := n.callAs(t, a1, "POST", "/links", link("cam1")); code != 400 || !strings.Contains(fmt.Sprint(out), "unknown device") {
		t.Fatalf("a1 links cam1: %d %v, want 400 unknown device (as for a device that does not exist)", code, out)
	}
	// Its own camera works.
	if code, out := n.callAs(t, a1, "PUT", "/devices/own1", `{"site":"hq","kind":"camera","source":"builtin:demo"}`); code/100 != 2 {
		t.Fatalf("a1 creates own1: %d %v", code, out)
	}
	code, out := n.callAs(t, a1, "POST", "/links", link("own1"))
	if code != 201 {
		t.Fatalf("a1 links own1: %d %v", code, out)
	}
	a1Link := out["id"].(string)
	// Root's link on cam1 is invisible to a1: not listed, not changeable.
	rootLink := mustCall(t, n, "POST", "/links", link("cam1"), 201)["id"].(string)
	req, _ := http.NewRequest("GET", n.api+"/links", nil)
	req.Header.Set("Authorization", "Bearer "+a1)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(body), rootLink) || !strings.Contains(string(body), a1Link) {
		t.Fatalf("a1's link list %s: want %s and not %s", body, a1Link, rootLink)
	}
	for _, path := range []string{"/links/" + rootLink + "/disable", "/links/" + rootLink + "/enable"} {
		if code, _ := n.callAs(t, a1, "POST", path, ""); code != 404 {
			t.Errorf("a1 POST %s: %d, want 404", path, code)
		}
	}
	if code, _ := n.callAs(t, a1, "DELETE", "/links/"+rootLink, ""); code != 404 {
		t.Errorf("a1 DELETE root's link: %d, want 404", code)
	}
	if code, out := n.call(t, "GET", "/links/"+rootLink, ""); code != 200 || out["enabled"] != true {
		t.Fatalf("root's link after a1's attempts: %d %v, want enabled", code, out)
	}
	// a2 (same role, a peer) sees neither a1's link nor its camera.
	if code, _ := n.callAs(t, a2, "POST", "/links/"+a1Link+"/disable", ""); code != 404 {
		t.Errorf("a2 disables a1's link: %d, want 404", code)
	}
}

// Hole 9: an individual-access admin lists only the sessions on cameras
// within its reach, and cannot kick the others.
func TestIndividualAccessScopesSessions(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/roles/ops", `{"actions":[],"sections":["devices:write","sessions:write"],"individual_access":true}`, 200)
	a1 := mustCall(t, n, "PUT", "/admins/a1", `{"roles":["ops"]}`, 200)["key"].(string)
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	base := strings.TrimSuffix(n.api, "/api/v1")
	if code, _, body := httpStatus(t, "GET", base+"/hls/cam1/index.m3u8?token="+viewerToken(t, "alice"), "", ""); code != 200 {
		t.Fatalf("alice HLS: %d %s", code, body)
	}
	list := n.g.Sessions().List()
	if len(list) != 1 {
		t.Fatalf("sessions: %v", list)
	}
	id := list[0].ID
	code, hdr, body := httpStatus(t, "GET", n.api+"/sessions", a1, "")
	if code != 200 || strings.Contains(body, id) || strings.Contains(body, "alice") {
		t.Fatalf("a1 lists sessions: %d %s %v; want none of cam1's", code, body, hdr)
	}
	if code, _, _ := httpStatus(t, "DELETE", n.api+"/sessions/"+id, a1, ""); code != 404 {
		t.Fatalf("a1 kicks alice's session: %d, want 404", code)
	}
	if n.g.Sessions().Len() != 1 {
		t.Fatal("a refused kick ended the session")
	}
	if code, _, body := httpStatus(t, "GET", n.api+"/sessions", testAdminKey, ""); code != 200 || !strings.Contains(body, id) {
		t.Fatalf("root lists sessions: %d %s", code, body)
	}
}
