package gateway

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/recorder"
	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
)

// metrics are the gateway's Prometheus counters. Label sets are fixed at
// construction where possible, so counting is one atomic add.
type metrics struct {
	decisions [8]atomic.Uint64          // by access.Outcome
	ends      [8]atomic.Uint64          // by session.EndReason
	links     map[string]*atomic.Uint64 // link token verifications by result

	// segments is the latency of HLS segment and part requests.
	segments histogram

	mu        sync.Mutex // guards upstreams
	upstreams map[string]string
	reconns   map[string]uint64
}

var linkResults = []string{"allowed", "denied", "invalid"}

// segmentBuckets are the upper bounds (seconds) of the segment latency
// histogram: cache hits take microseconds, LL-HLS blocking requests up to
// a part duration or more.
var segmentBuckets = [...]float64{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// histogram is a fixed-bucket Prometheus histogram, updated lock-free.
type histogram struct {
	counts [len(segmentBuckets) + 1]atomic.Uint64 // one per bucket, then +Inf
	sumUS  atomic.Uint64                          // microseconds
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(segmentBuckets) && s > segmentBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumUS.Add(uint64(d.Microseconds()))
}

func (h *histogram) write(b *strings.Builder, name string) {
	var cum uint64
	for i, le := range segmentBuckets {
		cum += h.counts[i].Load()
		fmt.Fprintf(b, "%s_bucket{le=\"%g\"} %d\n", name, le, cum)
	}
	cum += h.counts[len(segmentBuckets)].Load()
	fmt.Fprintf(b, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, cum, name, float64(h.sumUS.Load())/1e6, name, cum)
}

func newMetrics() *metrics {
	m := &metrics{
		links:     map[string]*atomic.Uint64{},
		upstreams: map[string]string{},
		reconns:   map[string]uint64{},
	}
	for _, r := range linkResults {
		m.links[r] = new(atomic.Uint64)
	}
	return m
}

// LinkVerification implements access.Counters.
func (m *metrics) LinkVerification(o access.Outcome) {
	r := "denied"
	switch o {
	case access.OutcomeAllowed:
		r = "allowed"
	case access.OutcomeUnauthenticated:
		r = "invalid"
	}
	m.links[r].Add(1)
}

// Admission implements access.Counters.
func (m *metrics) Admission(o access.Outcome) {
	if int(o) < len(m.decisions) {
		m.decisions[o].Add(1)
	}
}

// sessionEnded counts why a session ended.
func (m *metrics) sessionEnded(e session.EndReason) {
	if int(e) < len(m.ends) {
		m.ends[e].Add(1)
	}
}

func (m *metrics) upstream(camera, state string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if state == "closed" {
		delete(m.upstreams, camera)
		return
	}
	if state == "error" {
		m.reconns[camera]++
	}
	m.upstreams[camera] = state
}

// nodeStats are counters read from the components at scrape time.
type nodeStats struct {
	owned                  int      // cameras this node owns in the cluster (0 without one)
	relayedIn              []string // cameras this node pulls from their owner (a peer)
	cacheHits, cacheMisses uint64
	rtspBytes              uint64
	webrtcGSO              bool
	webrtcRefused          uint64
	recording              map[string]recorder.State // by camera (nil without an archive)
}

// write renders the exposition format.
func (m *metrics) write(ctx *fasthttp.RequestCtx, sessions []session.Session, streams []stream.Stats, ns nodeStats) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	var b strings.Builder
	b.WriteString("# HELP camgate_decisions_total Viewer admission decisions by result.\n# TYPE camgate_decisions_total counter\n")
	for _, o := range access.Outcomes {
		fmt.Fprintf(&b, "camgate_decisions_total{result=\"%s\"} %d\n", o.String(), m.decisions[o].Load())
	}
	b.WriteString("# HELP camgate_sessions_ended_total Viewer sessions ended, by reason.\n# TYPE camgate_sessions_ended_total counter\n")
	for _, e := range session.EndReasons {
		fmt.Fprintf(&b, "camgate_sessions_ended_total{reason=\"%s\"} %d\n", e.String(), m.ends[e].Load())
	}
	counts := map[[2]string]int{}
	relays := map[string]int{}
	for _, s := range sessions {
		if s.Relay != "" {
			relays[s.Camera]++ // another node's pull, not a viewer
			continue
		}
		counts[[2]string{s.Protocol, s.Camera}]++
	}
	keys := make([][2]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	b.WriteString("# HELP camgate_sessions Open viewer sessions by protocol and camera.\n# TYPE camgate_sessions gauge\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "camgate_sessions{protocol=\"%s\",camera=\"%s\"} %d\n", promLabel(k[0]), promLabel(k[1]), counts[k])
	}
	b.WriteString("# HELP camgate_relay_sessions Other cluster nodes pulling a camera from this node.\n# TYPE camgate_relay_sessions gauge\n")
	for _, c := range slices.Sorted(maps.Keys(relays)) {
		fmt.Fprintf(&b, "camgate_relay_sessions{camera=\"%s\"} %d\n", promLabel(c), relays[c])
	}
	b.WriteString("# HELP camgate_cluster_owned_cameras Cameras this node owns (pulls and records) for the cluster.\n# TYPE camgate_cluster_owned_cameras gauge\n")
	fmt.Fprintf(&b, "camgate_cluster_owned_cameras %d\n", ns.owned)
	b.WriteString("# HELP camgate_relay_pulls Cameras this node pulls from the cluster node that owns them (relays in).\n# TYPE camgate_relay_pulls gauge\n")
	for _, c := range slices.Sorted(slices.Values(ns.relayedIn)) {
		fmt.Fprintf(&b, "camgate_relay_pulls{camera=\"%s\"} 1\n", promLabel(c))
	}
	b.WriteString("# HELP camgate_recording_state State of each recording on this node (1 for its state: recording, starting, retrying, cannot_record).\n# TYPE camgate_recording_state gauge\n")
	recCams := make([]string, 0, len(ns.recording))
	for c := range ns.recording {
		recCams = append(recCams, c)
	}
	sort.Strings(recCams)
	for _, c := range recCams {
		fmt.Fprintf(&b, "camgate_recording_state{camera=\"%s\",state=\"%s\"} 1\n", promLabel(c), ns.recording[c].State)
	}
	// Each family is written whole (HELP, TYPE, then all its samples).
	m.mu.Lock()
	cams := make([]string, 0, len(m.upstreams))
	for c := range m.upstreams {
		cams = append(cams, c)
	}
	sort.Strings(cams)
	b.WriteString("# HELP camgate_upstream_up Upstream state per open camera stream (1 = receiving).\n# TYPE camgate_upstream_up gauge\n")
	for _, c := range cams {
		up := 0
		if m.upstreams[c] == "ready" {
			up = 1
		}
		fmt.Fprintf(&b, "camgate_upstream_up{camera=\"%s\"} %d\n", promLabel(c), up)
	}
	b.WriteString("# HELP camgate_upstream_reconnects_total Upstream failures per camera.\n# TYPE camgate_upstream_reconnects_total counter\n")
	for _, c := range cams {
		fmt.Fprintf(&b, "camgate_upstream_reconnects_total{camera=\"%s\"} %d\n", promLabel(c), m.reconns[c])
	}
	m.mu.Unlock()
	b.WriteString("# HELP camgate_stream_readers Readers attached per open camera stream.\n# TYPE camgate_stream_readers gauge\n")
	for _, s := range streams {
		fmt.Fprintf(&b, "camgate_stream_readers{camera=\"%s\"} %d\n", promLabel(s.Camera), s.Readers)
	}
	b.WriteString("# HELP camgate_dropped_packets_total Packets lost by slow readers, per open camera stream.\n# TYPE camgate_dropped_packets_total counter\n")
	for _, s := range streams {
		fmt.Fprintf(&b, "camgate_dropped_packets_total{camera=\"%s\"} %d\n", promLabel(s.Camera), s.Dropped)
	}
	b.WriteString("# HELP camgate_upstream_packets_lost_total RTP packets lost between the camera and this node, per open camera stream.\n# TYPE camgate_upstream_packets_lost_total counter\n")
	for _, s := range streams {
		fmt.Fprintf(&b, "camgate_upstream_packets_lost_total{camera=\"%s\"} %d\n", promLabel(s.Camera), s.PacketsLost)
	}
	b.WriteString("# HELP camgate_decision_cache_total Permission decisions by cache layer: L1 hits, and misses answered by evaluating the in-memory model.\n# TYPE camgate_decision_cache_total counter\n")
	fmt.Fprintf(&b, "camgate_decision_cache_total{layer=\"l1\"} %d\n", ns.cacheHits)
	fmt.Fprintf(&b, "camgate_decision_cache_total{layer=\"evaluated\"} %d\n", ns.cacheMisses)
	b.WriteString("# HELP camgate_rtsp_bytes_sent_total Media bytes written to RTSP-over-TCP viewers.\n# TYPE camgate_rtsp_bytes_sent_total counter\n")
	fmt.Fprintf(&b, "camgate_rtsp_bytes_sent_total %d\n", ns.rtspBytes)
	b.WriteString("# HELP camgate_webrtc_gso Whether WebRTC media leaves the ICE UDP mux in UDP GSO messages (1), or one datagram at a time (0).\n# TYPE camgate_webrtc_gso gauge\n")
	gso := 0
	if ns.webrtcGSO {
		gso = 1
	}
	fmt.Fprintf(&b, "camgate_webrtc_gso %d\n", gso)
	b.WriteString("# HELP camgate_webrtc_send_refused_total WebRTC datagrams the kernel refused to send (e.g. an unreachable viewer).\n# TYPE camgate_webrtc_send_refused_total counter\n")
	fmt.Fprintf(&b, "camgate_webrtc_send_refused_total %d\n", ns.webrtcRefused)
	b.WriteString("# HELP camgate_link_verifications_total Share-link token uses by result.\n# TYPE camgate_link_verifications_total counter\n")
	for _, r := range linkResults {
		fmt.Fprintf(&b, "camgate_link_verifications_total{result=\"%s\"} %d\n", r, m.links[r].Load())
	}
	b.WriteString("# HELP camgate_hls_segment_seconds Latency of HLS segment and part requests.\n# TYPE camgate_hls_segment_seconds histogram\n")
	m.segments.write(&b, "camgate_hls_segment_seconds")
	writeRuntimeMetrics(&b)
	ctx.SetBodyString(b.String())
}

// promLabel escapes a label value as the Prometheus text format wants:
// backslash, double quote and line feed, and nothing else (Go's %q would
// also escape tabs and non-ASCII, which a parser then reads literally).
func promLabel(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return labelEscaper.Replace(v)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
