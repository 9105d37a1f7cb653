package gateway

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
	"github.com/camgate/camgate/links"
)

// Red team of this session's changes: relay and archive node tokens, the
// held/ and recordings endpoints, remote archive reads, camera transport
// settings, camera state in the API, audio transcoders. Each attack is a
// real request to real nodes; each asserts the refusal and that nothing
// changed (no segment read from its holder, no device changed).

// archiveStatus is the status of GET /archive/cam1/{what} with tok on n
// over [start, end).
func archiveStatus(t *testing.T, n *node, what, tok string, start, end time.Time) (int, string) {
	t.Helper()
	q := url.Values{"start": {start.UTC().Format(time.RFC3339Nano)}, "end": {end.UTC().Format(time.RFC3339Nano)}}
	code, _, body := httpStatus(t, "GET", archiveURL(n)+"/cam1/"+what+"?"+q.Encode(), tok, "")
	return code, body
}

// spanSegments counts the segments a recordings answer lists.
func spanSegments(t *testing.T, body string) int {
	t.Helper()
	var r archive.Recordings
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("recordings %q: %v", body, err)
	}
	n := 0
	for _, sp := range r.Spans {
		n += sp.Segments
	}
	return n
}

// TestAttack7ClusterArchive: node na holds cam1's footage, node nb holds
// none. Every credential gets at nb exactly what na answers — playlist,
// recordings (authorized as the playlist: same status, the same number of
// segments), each segment, the download — and a refused one makes nb read
// nothing from na. Stolen node tokens and relay tokens read nothing but
// what they were minted for, and are no viewer credential anywhere.
func TestAttack7ClusterArchive(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	var nodes []*node
	for _, id := range []string{"na", "nb"} {
		nodes = append(nodes, startNodeWith(t, t.TempDir(), func(c *config.Config) {
			clusterNodeConfig(r.URL, "builtin:demo", false, id)(c)
			c.Cameras = append(c.Cameras, config.Camera{ID: "cam2", Site: "hq", Source: "builtin:demo"})
			c.Archive.SegmentDuration = config.Duration(2 * time.Second)
			c.Limits.AuthFailuresPerMinute = 1000 // this test fails many credentials from one address
		}))
	}
	A, B := nodes[0], nodes[1]
	start := time.Now().Add(-60 * time.Second).Truncate(time.Second)
	segs := recordFootage(t, A, "cam1", start, 20*time.Second)
	end := segs[len(segs)-1].End()
	// cam2's segments have cam1's names: a token for one is tried on the other.
	recordFootage(t, A, "cam2", start, 20*time.Second)
	for _, s := range []string{"alice", "bob", "carol", "dave"} {
		mustCall(t, A, "PUT", "/subjects/"+s, `{"kind":"user"}`, 200)
	}
	mustCall(t, A, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["archive","download","sound"]}`, 200)
	mustCall(t, A, "PUT", "/grants/g-bob", `{"subject":"bob","device":"cam1","actions":["live"]}`, 200)
	// carol sees the last 50 s only: the first segments are outside.
	mustCall(t, A, "PUT", "/grants/g-carol", `{"subject":"carol","device":"cam1","actions":["archive","download"],"footage_within":"50s"}`, 200)
	mustCall(t, A, "PUT", "/grants/g-dave", `{"subject":"dave","device":"cam1","actions":["archive"]}`, 200)
	from, to, na := segs[3].Start, segs[6].Start, time.Now().Add(time.Hour)
	lk, err := A.g.links.Create(links.Creator{Root: true}, links.CreateRequest{Device: "cam1", Actions: []string{"archive", "download"}, FootageFrom: &from, FootageTo: &to, NotAfter: &na})
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{"alice": viewerToken(t, "alice"), "bob (live only)": viewerToken(t, "bob"),
		"carol (footage_within)": viewerToken(t, "carol"), "dave (archive, no download)": viewerToken(t, "dave"),
		"link (footage window)": lk.Token, "admin key": testAdminKey}
	for _, n := range nodes {
		poll.Until(t, "the grants and the link to reach every node", func() bool {
			code, out := n.call(t, "GET", "/check?subject=dave&device=cam1&action=archive", "")
			_, err := n.g.links.Verify(lk.Token)
			return code == 200 && out["allowed"] == true && err == nil
		})
	}
	poll.Until(t, "nb to list na's segments", func() bool {
		code, body := archiveStatus(t, B, "recordings", creds["alice"], start, end)
		return code == 200 && spanSegments(t, body) == len(segs)
	})

	t.Run("every credential gets at nb what na answers", func(t *testing.T) {
		whats := []string{"index.m3u8", "recordings", "download"}
		for _, sg := range segs {
			whats = append(whats, sg.ID()+".mp4")
		}
		for name, tok := range creds {
			reads := A.g.archive.HeldReads()
			local, remote := map[string]int{}, map[string]int{}
			var listed, played [2]int // segments in recordings and in the playlist, at na and nb
			for _, what := range whats {
				var bodyA, bodyB string
				local[what], bodyA = archiveStatus(t, A, what, tok, start, end)
				remote[what], bodyB = archiveStatus(t, B, what, tok, start, end)
				if what == "recordings" && local[what] == 200 {
					listed[0], listed[1] = spanSegments(t, bodyA), spanSegments(t, bodyB)
				}
				if what == "index.m3u8" && local[what] == 200 {
					played[0], played[1] = len(playlistIDs(bodyA)), len(playlistIDs(bodyB))
				}
			}
			if listed != played {
				t.Errorf("%s: recordings list %v segments (na, nb), the playlist serves %v", name, listed, played)
			}
			if !maps.Equal(local, remote) {
				t.Errorf("%s: na answers %v, nb %v", name, local, remote)
			}
			// The recordings list is authorized exactly as the playlist.
			if local["recordings"] != local["index.m3u8"] {
				t.Errorf("%s: recordings %d, playlist %d", name, local["recordings"], local["index.m3u8"])
			}
			allowed := 0
			for _, what := range whats[3:] {
				if remote[what] == 200 {
					allowed++
				}
			}
			if remote["download"] != 200 {
				// nb read from na at most the segments it serves (each
				// playlist or segment request of an allowed one reads it).
				if got := A.g.archive.HeldReads() - reads; allowed == 0 && got != 0 {
					t.Errorf("%s: refused everywhere, yet nb read %d segments from na", name, got)
				}
			}
		}
		for name, want := range map[string]int{"bob (live only)": 403, "admin key": 401, "dave (archive, no download)": 200} {
			if code, _ := archiveStatus(t, B, "recordings", creds[name], start, end); code != want {
				t.Errorf("%s: recordings at nb %d, want %d", name, code, want)
			}
		}
		if code, _ := archiveStatus(t, B, "download", creds["dave (archive, no download)"], start, end); code != 403 {
			t.Errorf("dave (archive, no download): download at nb %d, want 403", code)
		}
	})

	t.Run("a refused segment request costs no shared-index query", func(t *testing.T) {
		// Only the shared index's range reads send ZREVRANGEBYSCORE.
		reads := func() int {
			info, err := r.Client().Info(t.Context(), "commandstats").Result()
			if err != nil {
				t.Fatal(err)
			}
			_, rest, _ := strings.Cut(info, "cmdstat_zrevrangebyscore:calls=")
			n, _ := strconv.Atoi(rest[:strings.IndexAny(rest+",", ",")])
			return n
		}
		seg := archive.SegmentName(start.Add(-time.Second)) // on no node: every lookup misses
		if code, _, _ := httpStatus(t, "GET", archiveURL(B)+"/cam1/"+seg+".mp4", creds["alice"], ""); code != 404 {
			t.Fatalf("a segment on no node: %d, want 404", code)
		}
		before := reads()
		if before == 0 {
			t.Fatal("an allowed lookup read no shared index: this check sees nothing")
		}
		for range 40 {
			for _, tok := range []string{"garbage", creds["bob (live only)"], testAdminKey, creds["link (footage window)"]} {
				if code, _, _ := httpStatus(t, "GET", archiveURL(B)+"/cam1/"+seg+".mp4", tok, ""); code == 200 || code == 404 {
					t.Fatalf("a refused segment request: %d", code)
				}
			}
		}
		if got := reads() - before; got != 0 {
			t.Fatalf("160 refused segment requests made %d range reads of the shared index", got)
		}
	})

	seg := segs[5].ID()
	held := archiveURL(A) + "/cam1/held/" + seg + ".mp4"
	good := B.g.access.ArchivePeerToken("nb", "na", "cam1", seg)
	relay := relayTokenOf(B, "cam1")
	offer := whepOffer(t)

	t.Run("a stolen node token reads its one segment, and nothing else", func(t *testing.T) {
		reads := A.g.archive.HeldReads()
		base := archiveURL(A)
		for name, path := range map[string]string{
			"another camera":           base + "/cam2/held/" + seg + ".mp4",
			"another segment":          base + "/cam1/held/" + segs[6].ID() + ".mp4",
			"a dot segment":            base + "/cam1/held/../held/" + seg + ".mp4",
			"an encoded dot segment":   base + "/cam1/held/%2e%2e/cam1/held/" + seg + ".mp4",
			"an encoded slash":         base + "/cam1/held/x%2F..%2F" + seg + ".mp4",
			"a nested path":            base + "/cam1/held/cam1/" + seg + ".mp4",
			"another extension":        base + "/cam1/held/" + seg + ".m3u8",
			"the viewer segment route": base + "/cam1/" + seg + ".mp4",
			"the playlist":             base + "/cam1/index.m3u8?start=" + url.QueryEscape(start.Format(time.RFC3339)),
			"the recordings":           base + "/cam1/recordings?start=" + url.QueryEscape(start.Format(time.RFC3339)),
			"the API":                  A.api + "/cameras",
			"the events feed":          A.api + "/events",
		} {
			if code, _, _ := httpStatus(t, "GET", path, good, ""); code == 200 {
				t.Errorf("%s: 200 with a node token", name)
			}
		}
		if code, _, _ := httpStatus(t, "GET", held+"?token="+url.QueryEscape(good), "", ""); code != 401 {
			t.Errorf("the node token in ?token=: %d, want 401 (node tokens travel in Authorization only)", code)
		}
		if code, _, _ := httpStatus(t, "POST", held, good, ""); code == 200 {
			t.Errorf("POST held/: 200")
		}
		// As a viewer credential, on every live edge: 401 everywhere.
		for edge, got := range edgeStatuses(t, A, "cam1", good, offer) {
			if got != 401 {
				t.Errorf("a node token on %s: %d, want 401", edge, got)
			}
		}
		if got := A.g.archive.HeldReads() - reads; got != 0 {
			t.Fatalf("a misused node token read %d segments", got)
		}
		if code, _, _ := httpStatus(t, "GET", held, good, ""); code != 200 {
			t.Fatalf("the node token on its own segment: %d", code)
		}
	})

	t.Run("viewer and link tokens do not open held/", func(t *testing.T) {
		reads := A.g.archive.HeldReads()
		for name, tok := range creds {
			if code, _, _ := httpStatus(t, "GET", held, tok, ""); code != 401 {
				t.Errorf("%s on held/: %d, want 401", name, code)
			}
			if code, _, _ := httpStatus(t, "GET", held+"?token="+url.QueryEscape(tok), "", ""); code != 401 {
				t.Errorf("%s on held/ in ?token=: %d, want 401", name, code)
			}
		}
		if code, _, _ := httpStatus(t, "GET", held, relay, ""); code != 401 {
			t.Errorf("a relay token on held/: %d, want 401", code)
		}
		if got := A.g.archive.HeldReads() - reads; got != 0 {
			t.Fatalf("viewer credentials read %d segments through held/", got)
		}
	})

	t.Run("a stolen relay token pulls its camera over RTSP and nothing else", func(t *testing.T) {
		reads := A.g.archive.HeldReads()
		base := archiveURL(A)
		for name, path := range map[string]string{
			"recordings": base + "/cam1/recordings?start=" + url.QueryEscape(start.Format(time.RFC3339)),
			"download":   base + "/cam1/download?start=" + url.QueryEscape(start.Format(time.RFC3339)) + "&end=" + url.QueryEscape(end.Format(time.RFC3339)),
			"a segment":  base + "/cam1/" + seg + ".mp4",
			"held/":      held,
			"the API":    A.api + "/cameras/cam1",
			"events":     A.api + "/events",
			"sessions":   A.api + "/sessions",
		} {
			if code, _, _ := httpStatus(t, "GET", path, relay, ""); code != 401 {
				t.Errorf("a relay token on %s: %d, want 401", name, code)
			}
		}
		if got := A.g.archive.HeldReads() - reads; got != 0 {
			t.Fatalf("a relay token read %d segments", got)
		}
		stale := &access.Service{RelaySecret: []byte(testClusterSecret), Now: func() time.Time { return time.Now().Add(-2 * time.Minute) }}
		i := strings.LastIndex(relay, "~")
		exp := strings.Split(relay[:i], "~")[4]
		for name, c := range map[string]struct {
			camera, tok string
			want        int
		}{
			"for cam1 on cam2":              {"cam2", relay, 403},
			"expired":                       {"cam1", stale.RelayToken("nb", "127.0.0.1", "cam1"), 401},
			"camera swapped in its body":    {"cam2", strings.Replace(relay, "~cam1~", "~cam2~", 1), 401},
			"expiry pushed later":           {"cam1", strings.Replace(relay, "~"+exp+"~", "~"+strconv.Itoa(mustAtoi(t, exp)+3600)+"~", 1), 401},
			"a node token's MAC on a relay": {"cam1", "cgrelay~nb~127.0.0.1~cam1~" + exp + good[strings.LastIndex(good, "~"):], 401},
		} {
			if got := rtspDescribe(t, A, c.camera, c.tok); got != c.want {
				t.Errorf("relay token %s: RTSP %d, want %d", name, got, c.want)
			}
		}
		if got := rtspDescribe(t, A, "cam1", relay); got != 200 {
			t.Fatalf("the relay token on its camera: RTSP %d", got)
		}
	})
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAttack7HeldNeedsACluster: without cluster.enabled there is no held/
// endpoint at all, whatever the credential (a node token minted with any
// secret, a viewer token): the 404 of an unknown archive endpoint, and no
// segment is read.
func TestAttack7HeldNeedsACluster(t *testing.T) {
	n := startArchiveNode(t)
	segs := recordFootage(t, n, "cam1", time.Now().Add(-30*time.Second).Truncate(time.Second), 6*time.Second)
	seg := segs[1].ID()
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["archive"]}`, 200)
	forger := &access.Service{RelaySecret: []byte(testClusterSecret), Now: time.Now}
	unknown, _, _ := httpStatus(t, "GET", archiveURL(n)+"/cam1/nothing/here", "", "")
	for name, tok := range map[string]string{
		"no token":     "",
		"a node token": forger.ArchivePeerToken("nb", n.g.Config.Cluster.NodeID, "cam1", seg),
		"a viewer":     viewerToken(t, "alice"),
		"the root key": testAdminKey,
	} {
		if code, _, body := httpStatus(t, "GET", archiveURL(n)+"/cam1/held/"+seg+".mp4", tok, ""); code != 404 || code != unknown {
			t.Errorf("%s on held/ of a single node: %d %s, want %d (unknown endpoint)", name, code, body, unknown)
		}
	}
	if got := n.g.archive.HeldReads(); got != 0 {
		t.Fatalf("a single node served %d held reads", got)
	}
}

// TestAttack7CameraSettingsAndState: through the real API, a `settings`
// holder changes a camera's transport but not its udp_read_buffer (any
// value, its own included when it differs), out-of-bounds buffers are a
// 400 naming the field even for root, and an individual-access admin gets
// for a camera it does not see what it gets for one that does not exist —
// on the device and in GET /api/v1/cameras, whose state fields
// (recording_state, upstream) it never sees. Nothing refused is stored.
func TestAttack7CameraSettingsAndState(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/devices/cam1", `{"site":"hq","kind":"camera","source":"builtin:demo","udp_read_buffer":65536}`, 200)
	mustCall(t, n, "PUT", "/subjects/ivan", `{"kind":"installer"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-ivan", `{"subject":"ivan","device":"cam1","actions":["settings"]}`, 200)
	ivan := viewerToken(t, "ivan")
	dev := func() map[string]any { return mustCall(t, n, "GET", "/devices/cam1", "", 200) }
	before := fmt.Sprint(dev())
	for name, body := range map[string]string{
		"a bigger buffer":           `{"udp_read_buffer":67108864}`,
		"a smaller buffer":          `{"udp_read_buffer":1}`,
		"the buffer with transport": `{"transport":"udp","udp_read_buffer":1048576}`,
		"a negative buffer":         `{"udp_read_buffer":-1}`,
	} {
		if code, out := n.callAs(t, ivan, "PUT", "/devices/cam1", body); code/100 == 2 {
			t.Errorf("settings holder, %s: %d %v", name, code, out)
		}
		if after := fmt.Sprint(dev()); after != before {
			t.Fatalf("settings holder, %s: the device changed\n%s\n%s", name, before, after)
		}
	}
	if code, out := n.callAs(t, ivan, "PUT", "/devices/cam1", `{"transport":"tcp"}`); code != 200 || out["transport"] != "tcp" || out["udp_read_buffer"] != float64(65536) {
		t.Fatalf("settings holder changing the transport only: %d %v", code, out)
	}
	before = fmt.Sprint(dev())
	for _, v := range []int{-1, 64<<20 + 1, 1 << 40} {
		code, out := n.call(t, "PUT", "/devices/cam1", fmt.Sprintf(`{"site":"hq","kind":"camera","source":"builtin:demo","udp_read_buffer":%d}`, v))
		if code != 400 || !strings.Contains(fmt.Sprint(out["error"]), "udp_read_buffer") {
			t.Errorf("root, udp_read_buffer %d: %d %v, want 400 naming the field", v, code, out)
		}
	}
	if after := fmt.Sprint(dev()); after != before {
		t.Fatalf("a refused buffer changed the device\n%s\n%s", before, after)
	}
	// A viewer (even with settings) reads no camera state.
	if code, _ := n.callAs(t, ivan, "GET", "/cameras/cam1", ""); code != 403 {
		t.Errorf("a settings holder reads camera state: %d, want 403", code)
	}

	mustCall(t, n, "PUT", "/roles/ops", `{"sections":["devices:read","devices:write"],"individual_access":true}`, 200)
	ops := mustCall(t, n, "POST", "/admins", `{"roles":["ops"]}`, 201)["key"].(string)
	if code, out := n.callAs(t, ops, "PUT", "/devices/mine", `{"site":"hq","kind":"camera","source":"builtin:demo"}`); code/100 != 2 {
		t.Fatalf("ops creates its camera: %d %v", code, out)
	}
	before = fmt.Sprint(dev())
	for _, path := range []string{"/cameras/", "/devices/"} {
		hidden, hb := n.callAs(t, ops, "GET", path+"cam1", "")
		missing, mb := n.callAs(t, ops, "GET", path+"nocam", "")
		if hidden != 404 || missing != 404 || fmt.Sprint(hb) != strings.Replace(fmt.Sprint(mb), "nocam", "cam1", 1) {
			t.Errorf("ops GET %scam1 (hidden) %d %v; %snocam (missing) %d %v; want the same 404", path, hidden, hb, path, missing, mb)
		}
	}
	hidden, hb := n.callAs(t, ops, "DELETE", "/devices/cam1", "")
	missing, mb := n.callAs(t, ops, "DELETE", "/devices/nocam", "")
	if hidden != 404 || missing != 404 || fmt.Sprint(hb) != strings.Replace(fmt.Sprint(mb), "nocam", "cam1", 1) {
		t.Errorf("ops DELETE /devices/cam1 (hidden) %d %v; /devices/nocam (missing) %d %v; want the same 404", hidden, hb, missing, mb)
	}
	for name, body := range map[string]string{
		"transport":       `{"site":"hq","kind":"camera","source":"builtin:demo","transport":"udp"}`,
		"udp_read_buffer": `{"site":"hq","kind":"camera","source":"builtin:demo","udp_read_buffer":4096}`,
	} {
		if code, out := n.callAs(t, ops, "PUT", "/devices/cam1", body); code/100 == 2 {
			t.Errorf("ops sets %s on a camera it does not see: %d %v", name, code, out)
		}
	}
	if after := fmt.Sprint(dev()); after != before {
		t.Fatalf("an individual-access admin changed a camera it does not see\n%s\n%s", before, after)
	}
	_, list := n.callAs(t, ops, "GET", "/cameras", "")
	b, _ := json.Marshal(list)
	if !strings.Contains(string(b), `"mine"`) || strings.Contains(string(b), "cam1") {
		t.Fatalf("ops lists %s; want its camera only", b)
	}
}

// transcoders lists the ffmpeg audio transcoders (gateway/transcode) that
// are children of this test process: ffmpeg reading pipe:0 and writing
// ADTS (HLS) or Ogg (WebRTC). Publishers read files and write RTSP.
func transcoders(t *testing.T) []string {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, p := range procs {
		stat, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != self {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		c := strings.ReplaceAll(string(cmd), "\x00", " ")
		if strings.Contains(c, "pipe:0") && (strings.Contains(c, " adts ") || strings.Contains(c, " ogg ")) {
			out = append(out, c)
		}
	}
	return out
}

// TestAttack7OneTranscoderPerCamera: a G.711 camera's HLS audio goes
// through one ffmpeg however many viewers open sessions and however often
// they reconnect (a storm of new sessions, viewers with and without
// sound); no ffmpeg is left once the viewers are kicked, nor after the
// camera is deleted.
func TestAttack7OneTranscoderPerCamera(t *testing.T) {
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, mediatest.Clip{Name: "h264-pcmu", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "25", "-pix_fmt", "yuv420p"}, Ext: "mkv", AudioCodec: "pcm_mulaw"})
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) {
		c.Cameras = []config.Camera{{ID: "cam1", Site: "hq", Source: up.URL()}}
	})
	var toks []string
	for i := range 4 {
		sub := fmt.Sprintf("v%d", i)
		mustCall(t, n, "PUT", "/subjects/"+sub, `{"kind":"user"}`, 200)
		acts := `["live","sound"]`
		if i == 3 {
			acts = `["live"]`
		}
		mustCall(t, n, "PUT", "/grants/g-"+sub, `{"subject":"`+sub+`","device":"cam1","actions":`+acts+`}`, 200)
		toks = append(toks, viewerToken(t, sub))
	}
	base := strings.TrimSuffix(n.api, "/api/v1") + "/hls/cam1/index.m3u8?token="
	storm := func() {
		for range 5 {
			for _, tok := range toks {
				res, err := http.Get(base + tok)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
			}
		}
	}
	storm()
	poll.Until(t, "cam1's audio transcoder to run", func() bool { return len(transcoders(t)) >= 1 })
	for range 3 {
		storm()
		if tc := transcoders(t); len(tc) != 1 {
			t.Fatalf("%d transcoders for one camera after a reconnect storm:\n%s", len(tc), strings.Join(tc, "\n"))
		}
	}
	if _, _, err := mediatest.Probe(t, base+toks[0]); err != nil {
		t.Fatalf("playing the transcoded HLS: %v", err)
	}
	if tc := transcoders(t); len(tc) != 1 {
		t.Fatalf("%d transcoders for one camera with a player:\n%s", len(tc), strings.Join(tc, "\n"))
	}
	transcodersEnd(t, n, storm)
}

// transcodersEnd checks that cam1's transcoder ends when its viewers are
// kicked, and, once join brought viewers back, when the camera is deleted
// under them.
func transcodersEnd(t *testing.T, n *node, join func()) {
	t.Helper()
	for _, ss := range n.g.registry.List() {
		mustCall(t, n, "DELETE", "/sessions/"+ss.ID, "", 200)
	}
	poll.Until(t, "the transcoder to end with the last viewer", func() bool { return len(transcoders(t)) == 0 })
	join()
	poll.Until(t, "cam1's transcoder to run again", func() bool { return len(transcoders(t)) == 1 })
	mustCall(t, n, "DELETE", "/devices/cam1", "", 200)
	poll.Until(t, "the transcoder to end with the camera", func() bool { return len(transcoders(t)) == 0 })
}

// TestAttack7OneWebRTCTranscoderPerCamera: an AAC camera's WebRTC audio
// goes through one ffmpeg (to Opus) for all its viewers with sound, however
// many peers join; none is left when they are kicked, nor after the camera
// is deleted under new ones.
func TestAttack7OneWebRTCTranscoderPerCamera(t *testing.T) {
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, mediatest.Clip{Name: "h264-aac", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "25", "-pix_fmt", "yuv420p"}, Ext: "mkv", AudioCodec: "aac"})
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) {
		c.Cameras = []config.Camera{{ID: "cam1", Site: "hq", Source: up.URL()}}
	})
	mustCall(t, n, "PUT", "/subjects/v", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/subjects/mute", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-v", `{"subject":"v","device":"cam1","actions":["live","sound"]}`, 200)
	mustCall(t, n, "PUT", "/grants/g-mute", `{"subject":"mute","device":"cam1","actions":["live"]}`, 200)
	var packets atomic.Int64
	join := func() {
		for range 4 {
			playWHEP(t, n, viewerToken(t, "v"), &packets)
		}
		playWHEP(t, n, viewerToken(t, "mute"), &packets)
	}
	join()
	poll.Until(t, "cam1's Opus transcoder to run", func() bool { return len(transcoders(t)) >= 1 })
	join()
	if tc := transcoders(t); len(tc) != 1 {
		t.Fatalf("%d transcoders for one camera's WebRTC viewers:\n%s", len(tc), strings.Join(tc, "\n"))
	}
	transcodersEnd(t, n, join)
}
