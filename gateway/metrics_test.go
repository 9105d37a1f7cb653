package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The whole /metrics answer of a running node, with sessions and an open
// upstream, parses with Prometheus' own text parser: every family once
// (a family split in two is a parse error there), runtime and process
// families present.
func TestMetricsParseWithPrometheusParser(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-alice", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	base := strings.TrimSuffix(n.api, "/api/v1")
	if code, _, body := httpStatus(t, "GET", base+"/hls/cam1/index.m3u8?token="+viewerToken(t, "alice"), "", ""); code != 200 {
		t.Fatalf("HLS viewer: %d %s", code, body)
	}
	rtspDescribe(t, n, "cam1", "forged") // a refusal, so a decision counter moves
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("Prometheus cannot parse /metrics: %v\n%s", err, raw)
	}
	for _, want := range []string{"camgate_decisions_total", "camgate_sessions", "camgate_upstream_up",
		"camgate_upstream_reconnects_total", "camgate_hls_segment_seconds", "go_goroutines",
		"go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes",
		"process_open_fds", "process_start_time_seconds"} {
		if fams[want] == nil {
			t.Errorf("family %s missing", want)
		}
	}
	if h := fams["camgate_hls_segment_seconds"]; h != nil && len(h.Metric[0].GetHistogram().GetBucket()) != len(segmentBuckets)+1 {
		t.Errorf("histogram has %d buckets, want %d and +Inf", len(h.Metric[0].GetHistogram().GetBucket()), len(segmentBuckets))
	}
}

func TestPromLabelEscaping(t *testing.T) {
	for in, want := range map[string]string{
		`cam1`:      `cam1`,
		`a"b`:       `a\"b`,
		`a\b`:       `a\\b`,
		"a\nb":      `a\nb`,
		"tab\there": "tab\there", // Prometheus takes tabs and UTF-8 as they are; Go's %q would not
		"café":      "café",
	} {
		got := promLabel(in)
		if got != want {
			t.Errorf("promLabel(%q) = %q, want %q", in, got, want)
		}
		text := "m{l=\"" + got + "\"} 1\n"
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			t.Errorf("%q does not parse: %v", text, err)
			continue
		}
		if v := fams["m"].Metric[0].Label[0].GetValue(); v != in {
			t.Errorf("round trip of %q gave %q", in, v)
		}
	}
}
