package gateway

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/pion/webrtc/v4"
	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
	"github.com/camgate/camgate/internal/whepclient"
)

// cmdCounts is how many times Redis processed each command (INFO
// commandstats "calls"), by lowercase command name, and in all under
// totalKey (INFO stats total_commands_processed).
type cmdCounts map[string]float64

const totalKey = "(total)"

// total sums the per-command counts.
func (c cmdCounts) total() float64 {
	var n float64
	for k, v := range c {
		if k != totalKey {
			n += v
		}
	}
	return n
}

// String lists the non-zero counts, largest first, e.g. "xread=3 get=3".
func (c cmdCounts) String() string {
	keys := slices.Collect(maps.Keys(c))
	slices.SortFunc(keys, func(a, b string) int {
		if c[a] != c[b] {
			if c[a] > c[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	var sb strings.Builder
	for _, k := range keys {
		if v := c[k]; k != totalKey && (v > 0.05 || v < -0.05) {
			fmt.Fprintf(&sb, "%s=%.1f ", k, v)
		}
	}
	return strings.TrimSpace(sb.String())
}

// commandCounter reads Redis' own command counters over one dedicated
// connection (no reconnects, so no HELLO or CLIENT commands of its own in
// the middle of a window). The INFO calls it makes are counted by Redis too;
// infoCost is what one read adds, measured, and taken out of every window.
type commandCounter struct {
	conn     *redis.Conn
	infoCost cmdCounts
}

func newCommandCounter(t *testing.T, srv *redistest.Server) *commandCounter {
	t.Helper()
	conn := srv.Client().Conn()
	t.Cleanup(func() { _ = conn.Close() })
	cc := &commandCounter{conn: conn}
	// Two reads back to back: what lies between them is the second read's
	// INFO plus whatever the nodes happened to send; the smallest of a few
	// tries is the read alone.
	for range 5 {
		before := cc.read(t)
		diff := sub(cc.read(t), before)
		if cc.infoCost == nil || diff.total() < cc.infoCost.total() {
			cc.infoCost = diff
		}
	}
	if cc.infoCost.total() != 1 || cc.infoCost["info"] != 1 || cc.infoCost[totalKey] != 1 {
		t.Fatalf("one INFO read costs %v; want info=1", cc.infoCost)
	}
	return cc
}

var (
	cmdstatLine    = regexp.MustCompile(`(?m)^cmdstat_([^:]+):calls=(\d+),`)
	totalProcessed = regexp.MustCompile(`(?m)^total_commands_processed:(\d+)`)
)

// read returns the counters now: INFO commandstats per command, and INFO
// stats' total_commands_processed under the key "(total)".
func (cc *commandCounter) read(t *testing.T) cmdCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := cc.conn.Info(ctx, "stats", "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := cmdCounts{}
	for _, m := range cmdstatLine.FindAllStringSubmatch(info, -1) {
		n, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] = n
	}
	m := totalProcessed.FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("no total_commands_processed in INFO stats")
	}
	out[totalKey], _ = strconv.ParseFloat(m[1], 64)
	return out
}

// sub returns a−b per command.
func sub(a, b cmdCounts) cmdCounts {
	out := cmdCounts{}
	for k, v := range a {
		out[k] = v - b[k]
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out[k] = -v
		}
	}
	return out
}

// scaled returns c×f per command.
func (c cmdCounts) scaled(f float64) cmdCounts {
	out := cmdCounts{}
	for k, v := range c {
		out[k] = v * f
	}
	return out
}

// bgPeriod is a whole number of periods of every background source of an
// idle node: the session directory's heartbeat (1 s), the change feed's
// blocking read and its heartbeat (1 s), the pub/sub health-check PINGs
// (3 s). A window this long, or a multiple of it, holds the same background
// whatever its phase, so the background subtracts out exactly rather than
// leaving a burst of a few commands at either edge.
const bgPeriod = 3 * time.Second

// window is what Redis processed while a case ran, without this counter's
// own reads.
type window struct {
	counts cmdCounts
	dur    time.Duration
}

// measure runs fn and reads what Redis processed meanwhile, over a window
// of d (a multiple of bgPeriod; longer, to the next multiple, if fn takes
// longer). fn gets the instant by which it should be done.
func (cc *commandCounter) measure(t *testing.T, d time.Duration, fn func(until time.Time)) window {
	t.Helper()
	before := cc.read(t)
	start := time.Now()
	fn(start.Add(d))
	for time.Since(start) > d {
		d += bgPeriod
	}
	<-time.After(time.Until(start.Add(d))) // the rest of the window: a span of time is what is measured
	counts := sub(sub(cc.read(t), before), cc.infoCost)
	if counts[totalKey] != counts.total() {
		t.Errorf("INFO stats counts %.0f commands, INFO commandstats %.0f (%v)", counts[totalKey], counts.total(), counts)
	}
	return window{counts: counts, dur: time.Since(start)}
}

// perSecond is the window's rate per command.
func (w window) perSecond() cmdCounts { return w.counts.scaled(1 / w.dur.Seconds()) }

// beyond returns what w holds beyond the background rate bg over w's
// duration, per command. One background source is counted rather than
// timed: the change feed's XREAD blocks for a second and is then followed
// by its heartbeat GET, but Redis ends blocking reads late by up to its
// cron period and the node's goroutine waits for a core on a loaded
// machine, so the cycle takes 1–1.2 s and a window may hold a cycle more or
// less than the idle rate says. The XREADs of the window are its feed
// cycles, each with its heartbeat GET at the idle ratio; any other GET
// still counts.
func (w window) beyond(bg cmdCounts) cmdCounts {
	exp := bg.scaled(w.dur.Seconds())
	if r := bg["xread"]; r > 0 {
		exp["xread"] = w.counts["xread"]
		exp["get"] = w.counts["xread"] * bg["get"] / r
	}
	return sub(w.counts, exp)
}

// steady reports whether two idle windows hold the same background, the
// change feed's cycles aside (see beyond).
func steady(a, b cmdCounts) bool {
	d := sub(a, b)
	delete(d, "xread")
	delete(d, "get")
	return d.String() == "" && a["get"] == a["xread"] && b["get"] == b["xread"]
}

// attributable is the number of commands of w beyond the background that a
// case caused, less the session directory's listing: while a node has
// sessions, each directory heartbeat writes them all with one HSET (one per
// heartbeat per node, whatever the number of sessions or packets; the idle
// background has none). It returns that HSET count apart.
func (w window) attributable(bg cmdCounts, heartbeat time.Duration) (n, listing float64) {
	ex := w.beyond(bg)
	listing = min(max(ex["hset"], 0), float64(w.dur/heartbeat)+1)
	return ex.total() - listing, listing
}

// playRTSPCounting is playRTSP with every received RTP packet counted.
func playRTSPCounting(t *testing.T, n *node, tok string, packets *atomic.Int64) *gortsplib.Client {
	t.Helper()
	c, err := dialRTSP(t, n.rtsp+"/cam1?token="+tok, packets)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hlsGet fetches url and returns its status and body.
func hlsGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	code, _, body := httpGet(t, c, url)
	return code, body
}

var playlistURI = regexp.MustCompile(`URI="([^"]+)"`)

// playlistURIs lists the URIs of a playlist (plain lines and URI="…"),
// without LL-HLS gap placeholders, which players never fetch.
func playlistURIs(pl string) []string {
	var out []string
	for _, line := range strings.Split(pl, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case !strings.HasPrefix(line, "#"):
			out = append(out, line)
		default:
			for _, m := range playlistURI.FindAllStringSubmatch(line, -1) {
				out = append(out, m[1])
			}
		}
	}
	return slices.DeleteFunc(out, func(u string) bool { return strings.HasPrefix(u, "gap.") })
}

// whepViewer is a pion peer receiving B's WHEP answer; it counts RTP
// packets on every track.
type whepViewer struct {
	pc       *webrtc.PeerConnection
	location string
}

func playWHEP(t *testing.T, n *node, tok string, packets *atomic.Int64) *whepViewer {
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
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				packets.Add(1)
			}
		}()
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	req, err := http.NewRequest("POST", "http://"+n.g.HTTPAddr().String()+"/whep/cam1", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/sdp")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST: %d %s", res.StatusCode, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	return &whepViewer{pc: pc, location: res.Header.Get("Location")}
}

// TestRedisRoundTrips checks issue 8's goal against a real redis-server
// shared by two nodes: zero Redis round trips per packet, per segment or
// per HLS request; at most one per new session on a cold cache (none on a
// warm one). Node A takes the writes, node B the viewers. Redis' own
// counters (INFO commandstats, read on a separate connection) over windows
// of whole background periods are compared with the idle nodes' rate.
// A case fails at 0.1 command per session (warm) or beyond 1.1 (cold), and
// at 0.01 per packet or per HLS request.
func TestRedisRoundTrips(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	a, b := startRedisNodes(t, srv.URL)
	cc := newCommandCounter(t, srv)
	heartbeat := b.g.redis.directory.Heartbeat
	t.Logf("one INFO read adds %v to Redis' counts; taken out of every window", cc.infoCost)

	const nSessions = 20
	grant := func(sub string) string {
		mustCall(t, a, "PUT", "/subjects/"+sub, `{"kind":"user"}`, 200)
		mustCall(t, a, "PUT", "/grants/g-"+sub, `{"subject":"`+sub+`","device":"cam1","actions":["live","sound"]}`, 200)
		return viewerToken(t, sub)
	}
	subjects, linkToks := make([]string, nSessions), make([]string, nSessions)
	for i := range nSessions {
		subjects[i] = grant(fmt.Sprintf("viewer%d", i))
		out := mustCall(t, a, "POST", "/links", `{"device":"cam1","actions":["live"],"not_after":"`+
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`, 201)
		linkToks[i] = out["token"].(string)
	}
	hlsTok, whepTok := grant("hls-viewer"), grant("whep-viewer")
	// B applies the feed in order: once it allows the last subject granted
	// it has every grant, and only that subject's decision is cached there.
	grant("sentinel")
	poll.Until(t, "B to allow the last subject granted", func() bool { return b.allows(t, "sentinel") })

	// The background right after writes is not yet steady (the change-feed
	// reads were just answered): it is taken once two idle windows in a row
	// hold the same commands (steady).
	idle := cc.measure(t, bgPeriod, func(time.Time) {})
	for i := 0; ; i++ {
		next := cc.measure(t, bgPeriod, func(time.Time) {})
		if steady(idle.counts, next.counts) {
			idle = window{counts: sub(next.counts, idle.counts.scaled(-1)) /* the sum of both */, dur: idle.dur + next.dur}
			break
		}
		if i == 5 {
			t.Fatalf("the idle background does not settle: %v, then %v", idle.counts, next.counts)
		}
		idle = next
	}
	bg := idle.perSecond()
	t.Logf("background, both nodes idle for %v: %.2f commands/s (%v)", idle.dur.Round(time.Millisecond), bg.total(), bg)

	// (1) New RTSP sessions on B, by viewer token and by share link (a link
	// B has never seen is read from Redis once: HGET), cold then warm.
	var packets atomic.Int64
	for _, c := range []struct {
		name string
		toks []string
	}{{"viewer tokens", subjects}, {"share links made on A", linkToks}} {
		for _, cold := range []bool{true, false} {
			cs := make([]*gortsplib.Client, 0, nSessions)
			w := cc.measure(t, bgPeriod, func(time.Time) {
				for _, tok := range c.toks {
					cs = append(cs, playRTSPCounting(t, b, tok, &packets))
				}
			})
			n, listing := w.attributable(bg, heartbeat)
			limit, temp := 0.1*nSessions, "warm"
			if cold {
				limit, temp = 1.1*nSessions, "cold"
			}
			t.Logf("%d new RTSP sessions, %s, %s: %.0f commands in %v; beyond the background %.1f, of which %.1f the directory listing; %.2f per session (%v)",
				nSessions, c.name, temp, w.counts.total(), w.dur.Round(time.Millisecond), n+listing, listing, n/nSessions, w.beyond(bg))
			if n > limit {
				t.Errorf("%d new %s RTSP sessions (%s) cost %.1f Redis commands; want at most %.0f", nSessions, c.name, temp, n, limit)
			}
			for _, c := range cs {
				c.Close()
			}
			poll.Until(t, "B's RTSP sessions to end", func() bool { return b.g.Sessions().Len() == 0 })
		}
	}

	// (2) An open RTSP session receiving media.
	c := playRTSPCounting(t, b, subjects[0], &packets)
	packets.Store(0)
	w := cc.measure(t, 2*bgPeriod, func(time.Time) {})
	p := float64(packets.Load())
	n, listing := w.attributable(bg, heartbeat)
	t.Logf("1 RTSP session playing for %v: %.0f packets, %.0f commands; beyond the background %.1f, of which %.1f the directory listing; %.4f per packet, %.2f per second (%v)",
		w.dur.Round(time.Millisecond), p, w.counts.total(), n+listing, listing, n/p, n/w.dur.Seconds(), w.beyond(bg))
	if p < 100 || n/p > 0.01 {
		t.Errorf("an RTSP session receiving %.0f packets cost %.1f Redis commands; want none (at most 0.01 per packet)", p, n)
	}
	c.Close()
	poll.Until(t, "B's RTSP session to end", func() bool { return b.g.Sessions().Len() == 0 })

	// (3) HLS: the token exchange of a subject B has no decision for, then
	// the playlists, init sections, segments and parts, fetched over and
	// over like a player would.
	hc := &http.Client{Timeout: 10 * time.Second}
	hlsBase := "http://" + b.g.HTTPAddr().String() + "/hls/cam1/"
	var index string
	w = cc.measure(t, bgPeriod, func(time.Time) {
		var code int
		if code, index = hlsGet(t, hc, hlsBase+"index.m3u8?token="+hlsTok); code != 200 {
			t.Fatalf("HLS index.m3u8: %d %s", code, index)
		}
	})
	n, listing = w.attributable(bg, heartbeat)
	t.Logf("1 new HLS session, cold: %.0f commands in %v; beyond the background %.1f, of which %.1f the directory listing (%v)",
		w.counts.total(), w.dur.Round(time.Millisecond), n+listing, listing, w.beyond(bg))
	if n > 1.1 {
		t.Errorf("a new HLS session (cold) cost %.1f Redis commands; want at most 1", n)
	}
	var requests, segments float64
	w = cc.measure(t, 2*bgPeriod, func(until time.Time) {
		for time.Until(until) > time.Second {
			for _, pl := range playlistURIs(index) {
				code, body := hlsGet(t, hc, hlsBase+pl)
				requests++
				if code != 200 {
					t.Fatalf("HLS %s: %d %s", pl, code, body)
				}
				for _, u := range playlistURIs(body) {
					if code, body := hlsGet(t, hc, hlsBase+u); code != 200 {
						t.Fatalf("HLS %s: %d %s", u, code, body)
					}
					requests++
					if strings.Contains(u, "_seg") || strings.Contains(u, "_part") {
						segments++
					}
				}
			}
		}
	})
	n, listing = w.attributable(bg, heartbeat)
	t.Logf("1 HLS session, %v: %.0f requests (%.0f segments and parts), %.0f commands; beyond the background %.1f, of which %.1f the directory listing; %.4f per request (%v)",
		w.dur.Round(time.Millisecond), requests, segments, w.counts.total(), n+listing, listing, n/requests, w.beyond(bg))
	if segments < 20 || n/requests > 0.01 {
		t.Errorf("%.0f HLS requests (%.0f segments and parts) cost %.1f Redis commands; want none (at most 0.01 per request)", requests, segments, n)
	}

	// (4) WHEP: a new peer of a subject B has no decision for, then its media.
	var whepPackets atomic.Int64
	var v *whepViewer
	w = cc.measure(t, bgPeriod, func(time.Time) { v = playWHEP(t, b, whepTok, &whepPackets) })
	n, listing = w.attributable(bg, heartbeat)
	t.Logf("1 new WHEP session, cold: %.0f commands in %v; beyond the background %.1f, of which %.1f the directory listing (%v)",
		w.counts.total(), w.dur.Round(time.Millisecond), n+listing, listing, w.beyond(bg))
	if n > 1.1 {
		t.Errorf("a new WHEP session (cold) cost %.1f Redis commands; want at most 1", n)
	}
	poll.Until(t, "WHEP media", func() bool { return whepPackets.Load() > 0 })
	whepPackets.Store(0)
	w = cc.measure(t, 2*bgPeriod, func(time.Time) {})
	p = float64(whepPackets.Load())
	n, listing = w.attributable(bg, heartbeat)
	t.Logf("1 WHEP session playing for %v: %.0f packets, %.0f commands; beyond the background %.1f, of which %.1f the directory listing; %.4f per packet, %.2f per second (%v)",
		w.dur.Round(time.Millisecond), p, w.counts.total(), n+listing, listing, n/p, n/w.dur.Seconds(), w.beyond(bg))
	if p < 100 || n/p > 0.01 {
		t.Errorf("a WHEP session receiving %.0f packets cost %.1f Redis commands; want none (at most 0.01 per packet)", p, n)
	}
	_ = v.pc.Close()
}
