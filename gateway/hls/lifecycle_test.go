package hls

import (
	"context"
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
	waitFor(t, func() bool {
		for _, st := range h.hub.Stats() {
			if st.Users > 0 {
				return false
			}
		}
		return true
	}, "hub released by the muxer")
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
	waitFor(t, func() bool {
		return get(t, h.base+"/hls/cam1/video1_stream.m3u8?session="+sid, "").status == http.StatusUnauthorized
	}, "tombstone expiry")
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
	waitFor(t, func() bool {
		r := get(t, h.base+"/hls/cam1/index.m3u8?token=bob", "")
		if r.status == http.StatusOK {
			sid = regexp.MustCompile(`camgate_hls=([0-9a-f]+)`).FindStringSubmatch(r.header.Get("Set-Cookie"))[1]
		}
		return sid != ""
	}, "first playlist")
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
	waitFor(t, func() bool { return get(t, ahead, "").status == http.StatusOK }, "blocking reload after the camera resumed")
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
	waitFor(t, func() bool {
		r := get(t, url, "")
		return r.status == http.StatusOK && prefix(r.body) != "" && prefix(r.body) != prefix(before.body)
	}, "a playlist from the restarted muxer")
	if seg := h.lastSegment(t, "cam1", "video1_stream.m3u8", sid); get(t, seg, "").status != http.StatusOK {
		t.Fatal("segment of the restarted muxer")
	}
}
