package gateway

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// recordings asks n for cam1's spans and gaps since since.
func recordings(t *testing.T, n *node, tok string, since time.Time) archive.Recordings {
	t.Helper()
	code, _, body := httpStatus(t, "GET", archiveURL(n)+"/cam1/recordings?start="+since.UTC().Format(time.RFC3339Nano), tok, "")
	if code != 200 {
		t.Fatalf("recordings: %d %s", code, body)
	}
	var r archive.Recordings
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func archiveURL(n *node) string { return strings.TrimSuffix(n.api, "/api/v1") + "/archive" }

// Issue 17, archive from any node: the owner records cam1, then dies to
// the cluster (it loses Redis: its leases expire, as a crash's would);
// another node takes over and records on. A third node, which recorded
// nothing, lists both nodes' segments with the gap between them, plays and
// downloads them, reading each from the node that holds it — after every
// segment is authorized there, as on one node. While the old owner is out,
// its segments are listed and reading one is a 503 naming it.
func TestClusterArchiveFromAnyNode(t *testing.T) {
	r := redistest.Start(t, redistest.Options{NoPersistence: true})
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, mediatest.Clip{Name: "h264-pcma", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "25", "-pix_fmt", "yuv420p"}, Ext: "mkv", AudioCodec: "pcm_alaw"})
	begin := time.Now()
	ids := []string{"na", "nb", "nc"}
	var nodes []*node
	var dirs []string
	var links []*redistest.Proxy
	for _, id := range ids {
		p := redistest.NewProxy(t, r.Addr)
		dir := t.TempDir()
		nodes, dirs, links = append(nodes, startNodeWith(t, dir, clusterNodeConfig(p.URL, up.URL(), true, id))), append(dirs, dir), append(links, p)
	}
	mustCall(t, nodes[0], "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, nodes[0], "PUT", "/subjects/bob", `{"kind":"user"}`, 200)
	mustCall(t, nodes[0], "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["archive","download","settings","sound"]}`, 200)
	mustCall(t, nodes[0], "PUT", "/grants/g-bob", `{"subject":"bob","device":"cam1","actions":["live"]}`, 200)
	alice, bob := viewerToken(t, "alice"), viewerToken(t, "bob")
	for _, n := range nodes {
		poll.Until(t, "the grants to reach every node", func() bool {
			code, out := n.call(t, "GET", "/check?subject=alice&device=cam1&action=download", "")
			return code == 200 && out["allowed"] == true
		})
	}

	owner := -1
	poll.Until(t, "a node to own and record cam1", func() bool {
		for i, n := range nodes {
			if _, ok := n.g.cluster.Load().Owns("cam1"); ok && segments(dirs[i]) >= 3 {
				owner = i
				return true
			}
		}
		return false
	})
	// The owner loses Redis mid-recording; another node takes cam1 once
	// its lease expires, and records.
	links[owner].Cut()
	next := -1
	poll.Until(t, "another node to record cam1", func() bool {
		for i, n := range nodes {
			if i == owner {
				continue
			}
			if _, ok := n.g.cluster.Load().Owns("cam1"); ok && segments(dirs[i]) >= 3 {
				next = i
				return true
			}
		}
		return false
	})
	third := 3 - owner - next
	O, S, T := nodes[owner], nodes[next], nodes[third]
	if segments(dirs[third]) != 0 {
		t.Fatalf("node %s, never the owner, recorded", ids[third])
	}
	if len(O.g.recorder.Recording()) > 0 {
		t.Fatalf("the cut-off owner still records %v", O.g.recorder.Recording())
	}

	// The old owner is out: its segments are listed, reading one says who
	// holds them.
	var ownerSeg string
	poll.Until(t, "reading the cut-off owner's segment through "+ids[third]+" to say it is down", func() bool {
		if ownerSeg == "" {
			rec := recordings(t, T, alice, begin)
			if len(rec.Spans) == 0 || rec.Spans[0].Node != ids[owner] {
				return false
			}
			ownerSeg = archive.SegmentName(rec.Spans[0].Start)
		}
		code, _, body := httpStatus(t, "GET", archiveURL(T)+"/cam1/"+ownerSeg+".mp4", alice, "")
		// A 503 that says why, naming no node: viewers do not learn ids.
		return code == 503 && strings.Contains(body, "node that is down") && !regexp.MustCompile(`\b`+ids[owner]+`\b`).MatchString(body)
	})

	// The true hole: from the end of the old owner's recording to the
	// start of the new owner's (negative: both recorded for a moment).
	oldSegs := O.g.archive.Segments("cam1", begin, time.Now())
	newSegs := S.g.archive.Segments("cam1", begin, time.Now())
	// It comes back (and may take cam1 back by rebalancing); what it
	// recorded while cut off reaches the shared index.
	links[owner].Restore()
	gap := newSegs[0].Start.Sub(oldSegs[len(oldSegs)-1].End())
	t.Logf("recording gap at failover (owner %s lost Redis, %s took over, lease_ttl 1s): %v", ids[owner], ids[next], gap.Round(time.Millisecond))
	if gap > 5*time.Second {
		t.Fatalf("recording gap %v at failover; the goal is at most 5 s", gap)
	}
	// Listed: every old-owner segment not inside one of the new owner's.
	want := 0
	for _, sg := range oldSegs {
		if sg.End().After(newSegs[0].End()) || sg.Start.Before(newSegs[0].Start) {
			want++
		}
	}
	var rec archive.Recordings
	poll.Until(t, ids[third]+" to list what the old owner recorded while cut off", func() bool {
		rec = recordings(t, T, alice, begin)
		n := 0
		for _, sp := range rec.Spans {
			if sp.Node == ids[owner] && sp.Start.Before(newSegs[0].End()) {
				n += sp.Segments
			}
		}
		return n == want
	})
	poll.Until(t, ids[owner]+"'s segments to be readable through "+ids[third]+" again", func() bool {
		code, _, _ := httpStatus(t, "GET", archiveURL(T)+"/cam1/"+ownerSeg+".mp4", alice, "")
		return code == 200
	})
	if len(rec.Spans) < 2 || rec.Spans[0].Node != ids[owner] || rec.Spans[1].Node != ids[next] {
		b, _ := json.Marshal(rec)
		t.Fatalf("recordings %s; want %s's span then %s's", b, ids[owner], ids[next])
	}
	if gap > 0 {
		listed := time.Duration(0)
		for _, g := range rec.Gaps {
			if g.Start.Equal(rec.Spans[0].End) {
				listed = time.Duration(g.Duration * float64(time.Second))
			}
		}
		if (listed - gap).Abs() > time.Millisecond {
			b, _ := json.Marshal(rec)
			t.Fatalf("recordings %s: the gap at the change of owner is listed as %v, it is %v", b, listed, gap)
		}
	}
	from, to := rec.Spans[0].Start, rec.Spans[1].End
	rng := "start=" + from.UTC().Format(time.RFC3339Nano) + "&end=" + to.UTC().Format(time.RFC3339Nano)
	code, _, pl := httpStatus(t, "GET", archiveURL(T)+"/cam1/index.m3u8?"+rng, alice, "")
	if code != 200 || strings.Count(pl, "#EXTINF:") < 6 || !strings.Contains(pl, "#EXT-X-DISCONTINUITY\n") {
		t.Fatalf("playlist on %s: %d; want every segment and a discontinuity where the owner changed\n%s", ids[third], code, pl)
	}
	// The G.711 recording plays with sound from the node that holds none
	// of it: each segment's PCM, and its neighbours', read from its holder.
	if codecs, stderr, err := mediatest.Probe(t, archiveURL(T)+"/cam1/index.m3u8?"+rng+"&token="+alice); err != nil || strings.Join(codecs, ",") != "aac,h264" {
		t.Fatalf("the playlist through %s: %v %v %s, want aac,h264", ids[third], codecs, err, stderr)
	}
	mediatest.AssertTone(t, archiveURL(T)+"/cam1/index.m3u8?"+rng+"&token="+alice)
	readsO, readsS := O.g.archive.HeldReads(), S.g.archive.HeldReads()

	// A viewer without archive/download gets what one node answers, and
	// no holder is asked for anything.
	for _, path := range []string{"/cam1/index.m3u8?" + rng, "/cam1/" + ownerSeg + ".mp4", "/cam1/download?" + rng, "/cam1/recordings?" + rng} {
		want, _, _ := httpStatus(t, "GET", archiveURL(S)+path, bob, "")
		got, _, b := httpStatus(t, "GET", archiveURL(T)+path, bob, "")
		if got != 403 || got != want {
			t.Fatalf("bob on %s: %d %s; %s answers %d, want 403 on both", path, got, b, ids[next], want)
		}
	}
	if O.g.archive.HeldReads() != readsO || S.g.archive.HeldReads() != readsS {
		t.Fatal("a refused viewer's requests read segments from their holders")
	}

	// The download from the third node spans both holders and plays.
	res, _, body2 := httpStatus(t, "GET", archiveURL(T)+"/cam1/download?"+rng, alice, "")
	if res != 200 {
		t.Fatalf("download on %s: %d %s", ids[third], res, body2)
	}
	path := filepath.Join(t.TempDir(), "both.mp4")
	if err := os.WriteFile(path, []byte(body2), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("decoding the download: %v\n%s", err, out)
	}
	dur := probeDuration(t, path)
	recorded := 0.0
	for _, sp := range rec.Spans {
		recorded += sp.Duration
	}
	t.Logf("download %.2f s over %v of wall clock: %.2f s recorded by %s and %s, %v gap", dur, to.Sub(from).Round(time.Millisecond), recorded, ids[owner], ids[next], gap.Round(time.Millisecond))
	if want := to.Sub(from).Seconds(); math.Abs(dur-want) > 0.5 {
		t.Fatalf("the download lasts %.2f s; want the range's %.2f s (recorded %.2f s, the gap on the timeline)", dur, want, recorded)
	}
	if O.g.archive.HeldReads() == readsO || S.g.archive.HeldReads() == readsS {
		t.Fatal("the download did not read from both holders")
	}
	// The old owner's segments play through the third node.
	code, _, _ = httpStatus(t, "GET", archiveURL(T)+"/cam1/"+ownerSeg+".mp4?a=1", alice, "")
	if code != 200 {
		t.Fatalf("the returned owner's segment through %s: %d", ids[third], code)
	}
	// So does a snapshot of their footage (the third node holds none).
	at := rec.Spans[0].Start.Add(time.Duration(rec.Spans[0].Duration / 2 * float64(time.Second)))
	snap := strings.TrimSuffix(T.api, "/api/v1") + "/api/v1/cameras/cam1/snapshot.jpg?at=" + at.UTC().Format(time.RFC3339Nano)
	if code, h, b := httpStatus(t, "GET", snap, alice, ""); code != 200 || h.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("a snapshot of %s's footage through %s: %d %s", ids[owner], ids[third], code, b)
	}

	// Node tokens: only a valid one for exactly that segment reads it.
	held := archiveURL(O) + "/cam1/held/" + ownerSeg + ".mp4"
	other := &access.Service{RelaySecret: []byte(strings.Repeat("z", 40)), Now: time.Now}
	stale := &access.Service{RelaySecret: []byte(testClusterSecret), Now: func() time.Time { return time.Now().Add(-2 * time.Minute) }}
	good := T.g.access.ArchivePeerToken(ids[third], ids[owner], "cam1", ownerSeg)
	readsO = O.g.archive.HeldReads()
	for name, tok := range map[string]string{
		"no token":            "",
		"a viewer token":      alice,
		"another secret":      other.ArchivePeerToken(ids[third], ids[owner], "cam1", ownerSeg),
		"expired":             stale.ArchivePeerToken(ids[third], ids[owner], "cam1", ownerSeg),
		"another segment":     T.g.access.ArchivePeerToken(ids[third], ids[owner], "cam1", "2000-01-01_00-00-00-000000"),
		"another holder":      T.g.access.ArchivePeerToken(ids[third], ids[next], "cam1", ownerSeg),
		"a relay token":       relayTokenOf(T, "cam1"),
		"tampered":            strings.Replace(good, "~cam1~", "~cam2~", 1),
		"truncated signature": good[:len(good)-2],
	} {
		if code, _, b := httpStatus(t, "GET", held, tok, ""); code != 401 {
			t.Errorf("%s: %d %s; want 401", name, code, b)
		}
	}
	if O.g.archive.HeldReads() != readsO {
		t.Fatal("a bad node token read a segment")
	}
	if code, _, b := httpStatus(t, "GET", held, good, ""); code != 200 || len(b) == 0 {
		t.Fatalf("a valid node token: %d", code)
	}
	// A node token is no viewer credential.
	if code, _, _ := httpStatus(t, "GET", archiveURL(T)+"/cam1/index.m3u8?"+rng, good, ""); code != 401 {
		t.Fatalf("a node token as a viewer token: %d, want 401", code)
	}
}

// probeDuration is a file's duration by ffprobe.
func probeDuration(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q", out)
	}
	return d
}
