package hls

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/internal/poll"
)

func TestRevokeTurnsNextRequestInto403(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		revoke func(h *harness)
	}{
		{"invalidation kicks", func(h *harness) {
			h.adm.Revoke("alice")
			if n := h.reg.Invalidate(session.Change{Subjects: []string{"alice"}}); n != 1 {
				t.Errorf("invalidate ended %d sessions, want 1", n)
			}
		}},
		{"admin kick", func(h *harness) {
			if !h.reg.Kick(h.reg.List()[0].ID, "kicked by admin") {
				t.Error("kick: no such session")
			}
		}},
		{"per-request recheck", func(h *harness) { h.adm.Revoke("alice") }},
		{"token expired", func(h *harness) { h.adm.Expire("alice") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			sid, _ := h.exchange(t, "cam1", "alice")
			seg := h.lastSegment(t, "cam1", "video1_stream.m3u8", sid)
			if r := get(t, seg, ""); r.status != http.StatusOK {
				t.Fatalf("segment before revoke: %d %s", r.status, r.body)
			}
			c.revoke(h)
			if r := get(t, seg, ""); r.status != http.StatusForbidden {
				t.Fatalf("segment after revoke: %d %s", r.status, r.body)
			}
			if r := get(t, h.base+"/hls/cam1/video1_stream.m3u8?session="+sid, ""); r.status != http.StatusForbidden {
				t.Fatalf("playlist after revoke: %d %s", r.status, r.body)
			}
			if n := h.reg.Len(); n != 0 {
				t.Fatalf("registry still lists %d sessions: %+v", n, h.reg.List())
			}
		})
	}
}

func TestIdleSessionsExpire(t *testing.T) {
	t.Parallel()
	ended := make(chan string, 4)
	h := newHarness(t, func(s *Server) { s.IdleTimeout = 300 * time.Millisecond })
	h.reg.OnEnd = func(_ *session.Session, _ session.EndReason, reason string) { ended <- reason }
	sid, _ := h.exchange(t, "cam1", "bob")
	if r := get(t, h.base+"/hls/cam1/video1_stream.m3u8?session="+sid, ""); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	select {
	case reason := <-ended:
		if reason != "idle" {
			t.Fatalf("session ended for %q", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("idle session did not expire")
	}
	if h.reg.Len() != 0 {
		t.Fatalf("registry: %+v", h.reg.List())
	}
	if r := get(t, h.base+"/hls/cam1/video1_stream.m3u8?session="+sid, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("expired session: %d %s", r.status, r.body)
	}
	// The muxer let go of the camera: the hub has no user left.
	poll.Until(t,

		"hub released by the muxer", func() bool {
			for _, st := range h.hub.Stats() {
				if st.Users > 0 {
					return false
				}
			}
			return true
		})

}

// TestKickedSessionSaysForbiddenUntilIdle: the 403 is not a one-off; once
// the tombstone idles out the id is simply unknown.
func TestKickedSessionSaysForbiddenUntilIdle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *Server) { s.IdleTimeout = 500 * time.Millisecond })
	sid, _ := h.exchange(t, "cam1", "bob")
	h.reg.Kick(h.reg.List()[0].ID, "test")
	for range 2 {
		if r := get(t, h.base+"/hls/cam1/video1_stream.m3u8?session="+sid, ""); r.status != http.StatusForbidden {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	poll.Until(t,

		"tombstone expiry", func() bool {
			return get(t, h.base+"/hls/cam1/video1_stream.m3u8?session="+sid, "").status == http.StatusUnauthorized
		})

}

var (
	mediaSeq = regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`)
	preload  = regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"`)
)

// nextMSN returns the media sequence number of the segment being built.
func nextMSN(t *testing.T, playlist string) int {
	t.Helper()
	m := mediaSeq.FindStringSubmatch(playlist)
	if m == nil {
		t.Fatalf("no media sequence in %s", playlist)
	}
	seq, _ := strconv.Atoi(m[1])
	return seq + strings.Count(playlist, "#EXTINF")
}

// TestLowLatencyBlockingRequests: LL-HLS blocking reloads and preload-hint
// parts are answered once the muxer has them.
func TestLowLatencyBlockingRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sid, _ := h.exchange(t, "cam1", "alice")
	base := h.base + "/hls/cam1/"
	pl := get(t, base+"video1_stream.m3u8?session="+sid, "")
	if !strings.Contains(pl.body, "CAN-BLOCK-RELOAD=YES") {
		t.Fatalf("not an LL-HLS playlist:\n%s", pl.body)
	}
	hint := preload.FindStringSubmatch(pl.body)
	if hint == nil {
		t.Fatalf("no preload hint:\n%s", pl.body)
	}
	part := get(t, base+hint[1], "")
	if part.status != http.StatusOK || part.header.Get("Content-Type") != "video/mp4" || len(part.body) == 0 {
		t.Fatalf("preload-hint part: %d %v", part.status, part.header)
	}
	next := strconv.Itoa(nextMSN(t, pl.body))
	blocked := get(t, base+"video1_stream.m3u8?_HLS_msn="+next+"&_HLS_part=0&session="+sid, "")
	if blocked.status != http.StatusOK {
		t.Fatalf("blocking reload: %d %s", blocked.status, blocked.body)
	}
	if nextMSN(t, blocked.body) < nextMSN(t, pl.body) || strings.Contains(blocked.body, "_HLS_msn") {
		t.Fatalf("blocking reload did not advance, or leaked its parameters:\n%s", blocked.body)
	}
}

// stallingSource plays the demo until stalled, then keeps the connection
// but delivers nothing, like a camera that froze.
type stallingSource struct {
	inner   source.Source
	stalled *atomic.Bool
}

func (s stallingSource) Run(ctx context.Context, sink source.Sink) error {
	return s.inner.Run(ctx, stallingSink{Sink: sink, stalled: s.stalled})
}

type stallingSink struct {
	source.Sink
	stalled *atomic.Bool
}

func (s stallingSink) WritePacketRTP(media int, pkt *rtp.Packet, ntp time.Time) {
	if !s.stalled.Load() {
		s.Sink.WritePacketRTP(media, pkt, ntp)
	}
}

// TestBlockingRequestsAreBounded: with a frozen camera, a blocking reload is
// answered 503 after BlockTimeout, and past MaxBlocking at once; the muxer
// calls left behind finish when the camera resumes.
func TestBlockingRequestsAreBounded(t *testing.T) {
	t.Parallel()
	var stalled atomic.Bool
	const timeout = 300 * time.Millisecond
	h := newHarness(t, func(s *Server) { s.BlockTimeout, s.MaxBlocking = timeout, 2 })
	h.hub.Sources = func(string) (source.Source, error) {
		demo, err := source.New("builtin:demo", source.Options{})
		return stallingSource{inner: demo, stalled: &stalled}, err
	}
	// A first playlist needs a first segment (a GOP, 1 s): players retry 503.
	var sid string
	poll.Until(t,

		"first playlist", func() bool {
			r := get(t, h.base+"/hls/cam1/index.m3u8?token=bob", "")
			if r.status == http.StatusOK {
				sid = regexp.MustCompile(`camgate_hls=([0-9a-f]+)`).FindStringSubmatch(r.header.Get("Set-Cookie"))[1]
			}
			return sid != ""
		})

	url := h.base + "/hls/cam1/video1_stream.m3u8?session=" + sid
	pl := get(t, url, "")
	stalled.Store(true)
	ahead := url + "&_HLS_msn=" + strconv.Itoa(nextMSN(t, pl.body)+1)
	for i := range 2 {
		start := time.Now()
		r := get(t, ahead, "")
		if r.status != http.StatusServiceUnavailable || time.Since(start) < timeout {
			t.Fatalf("request %d: %d after %v: %s", i, r.status, time.Since(start), r.body)
		}
	}
	start := time.Now()
	if r := get(t, ahead, ""); r.status != http.StatusServiceUnavailable || time.Since(start) >= timeout {
		t.Fatalf("past MaxBlocking: %d after %v", r.status, time.Since(start))
	}
	stalled.Store(false)
	poll.Until(t, "blocking reload after the camera resumed", func() bool { return get(t, ahead, "").status == http.StatusOK })
}

// TestSessionIsNotBoundToTheClientAddress: a player whose address changes
// (a phone moving networks) keeps its session.
func TestSessionIsNotBoundToTheClientAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sid, _ := h.exchange(t, "cam1", "bob") // from 127.0.0.1
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)},
	}).DialContext}}
	resp, err := other.Get(h.base + "/hls/cam1/video1_stream.m3u8?session=" + sid)
	if err != nil {
		t.Skipf("cannot use 127.0.0.2 here: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("from another address: %d", resp.StatusCode)
	}
	if s := h.reg.List(); len(s) != 1 || !strings.HasPrefix(s[0].Remote, "127.0.0.1") {
		t.Fatalf("registered %+v", s)
	}
}

// TestMuxerFollowsAStreamRestart: when the hub replaces the camera's stream
// (source changed), the session keeps working on a new muxer.
func TestMuxerFollowsAStreamRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sid, _ := h.exchange(t, "cam1", "alice")
	url := h.base + "/hls/cam1/video1_stream.m3u8?session=" + sid
	before := get(t, url, "")
	if before.status != http.StatusOK {
		t.Fatalf("%d %s", before.status, before.body)
	}
	prefix := func(playlist string) string {
		m := regexp.MustCompile(`([0-9a-f]{12})_video1_init\.mp4`).FindStringSubmatch(playlist)
		if m == nil {
			return ""
		}
		return m[1]
	}
	h.hub.Reset("cam1")
	poll.Until(t,

		"a playlist from the restarted muxer", func() bool {
			r := get(t, url, "")
			return r.status == http.StatusOK && prefix(r.body) != "" && prefix(r.body) != prefix(before.body)
		})

	if seg := h.lastSegment(t, "cam1", "video1_stream.m3u8", sid); get(t, seg, "").status != http.StatusOK {
		t.Fatal("segment of the restarted muxer")
	}
}

// TestBlockingRequestsArePerSession: with a frozen camera, one session's
// blocked requests stop at MaxBlockingPerSession: beyond it its playlist
// reloads are answered at once with the current playlist and its parts with
// 503, while another session of the camera still gets to wait (and is
// answered when the camera resumes).
func TestBlockingRequestsArePerSession(t *testing.T) {
	t.Parallel()
	var stalled atomic.Bool
	// The greedy session's requests must still be waiting when the other
	// session's reload arrives, after the cases below: at 4 s a loaded
	// machine (the suite under -race) let them time out first.
	const timeout, perSession = 10 * time.Second, 2
	h := newHarness(t, func(s *Server) { s.BlockTimeout, s.MaxBlockingPerSession = timeout, perSession })
	h.hub.Sources = func(string) (source.Source, error) {
		demo, err := source.New("builtin:demo", source.Options{})
		return stallingSource{inner: demo, stalled: &stalled}, err
	}
	open := func() string {
		var sid string
		poll.Until(t,

			"first playlist", func() bool {
				r := get(t, h.base+"/hls/cam1/index.m3u8?token=bob", "")
				if r.status == http.StatusOK {
					sid = regexp.MustCompile(`camgate_hls=([0-9a-f]+)`).FindStringSubmatch(r.header.Get("Set-Cookie"))[1]
				}
				return sid != ""
			})

		return sid
	}
	greedy, other := open(), open()
	playlist := h.base + "/hls/cam1/video1_stream.m3u8?session="
	pl := get(t, playlist+greedy, "")
	hint := preload.FindStringSubmatch(pl.body)
	if hint == nil {
		t.Fatalf("no preload hint:\n%s", pl.body)
	}
	stalled.Store(true)
	ahead := "&_HLS_msn=" + strconv.Itoa(nextMSN(t, pl.body)+1)
	pending := func() int32 {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		var n int32
		for _, cm := range h.srv.muxers {
			n += cm.pending.Load()
		}
		return n
	}

	results := make(chan response, perSession+1)
	for range perSession {
		go func() { results <- getAsync(playlist + greedy + ahead) }()
	}
	poll.Until(t, "the greedy session's blocked reloads", func() bool { return pending() == perSession })

	cases := []struct {
		name, url string
		want      int
		check     func(t *testing.T, r response)
	}{
		{"reload past the cap: the current playlist at once", playlist + greedy + ahead, http.StatusOK, func(t *testing.T, r response) {
			if nextMSN(t, r.body) != nextMSN(t, pl.body) || strings.Contains(r.body, "_HLS_msn") {
				t.Fatalf("not the current playlist as a plain reload:\n%s", r.body)
			}
		}},
		{"part past the cap: 503 at once", h.base + "/hls/cam1/" + hint[1], http.StatusServiceUnavailable, func(t *testing.T, r response) {
			if r.header.Get("Retry-After") == "" {
				t.Fatalf("no Retry-After: %v", r.header)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := get(t, c.url, "")
			if el := time.Since(start); r.status != c.want || el >= timeout/2 {
				t.Fatalf("%d after %v, want %d at once: %s", r.status, el, c.want, r.body)
			}
			c.check(t, r)
		})
	}

	go func() { results <- getAsync(playlist + other + ahead) }()
	poll.Until(t, "the other session's reload to wait", func() bool { return pending() == perSession+1 })
	stalled.Store(false)
	for range perSession + 1 {
		if r := <-results; r.status != http.StatusOK || nextMSN(t, r.body) <= nextMSN(t, pl.body) {
			t.Fatalf("blocked reload after the camera resumed: %d\n%s", r.status, r.body)
		}
	}
}

// getAsync is get for another goroutine than the test's: a failed request
// is status -1 with the error as body.
func getAsync(url string) response {
	resp, err := http.Get(url)
	if err != nil {
		return response{status: -1, body: err.Error()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{status: -1, body: err.Error()}
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// TestBlockingQueryBounds: which query a session's blocking request runs
// with, by how many it has in flight (cap 2), and that a refused one gives
// its slot back.
func TestBlockingQueryBounds(t *testing.T) {
	s := &Server{MaxBlockingPerSession: 2}
	msn := &query{msn: []byte("7"), part: []byte("1"), skip: []byte("YES")}
	cases := []struct {
		name     string
		inFlight int32
		kind     fileKind
		q        *query
		want     string // "" = refused
	}{
		{"reload within the cap", 1, kindPlaylist, msn, "session=s&_HLS_msn=7&_HLS_part=1&_HLS_skip=YES"},
		{"reload past the cap: plain reload", 2, kindPlaylist, msn, "session=s&_HLS_skip=YES"},
		{"reload at twice the cap: refused", 4, kindPlaylist, msn, ""},
		{"plain playlist past the cap: refused", 2, kindPlaylist, &query{}, ""},
		{"part past the cap: refused", 2, kindPart, &query{}, ""},
		{"part within the cap", 0, kindPart, &query{}, "session=s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hs := &hlsSession{id: "s"}
			hs.blocking.Store(c.inFlight)
			got, err := s.blockingQuery(hs, c.kind, c.q)
			switch {
			case c.want == "" && !errors.Is(err, errSessionBlocking):
				t.Fatalf("got %q, %v; want errSessionBlocking", got, err)
			case c.want == "" && hs.blocking.Load() != c.inFlight:
				t.Fatalf("a refused request kept its slot: %d in flight", hs.blocking.Load())
			case c.want != "" && (err != nil || got != c.want || hs.blocking.Load() != c.inFlight+1):
				t.Fatalf("got %q, %v, %d in flight; want %q", got, err, hs.blocking.Load(), c.want)
			}
		})
	}
}
