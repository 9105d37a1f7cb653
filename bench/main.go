// Command bench runs camgate's load scenarios side by side with mediamtx
// serving the same stream on the same machine, and prints a table and JSON.
//
//	go run ./bench -scenario rtsp-fanout -readers 50
//	go run ./bench -scenario ttff
//	go run ./bench -h
//
// Each scenario starts what it needs: mediamtx (built by
// ../shared/tools/build-mediamtx unless -mediamtx is given) as the origin,
// ffmpeg publishing a looped 2 Mbit/s H264 + Opus clip into it, and camgate
// as a separate process pulling that origin. Clients are driven from this
// process; CPU and memory are read from /proc for the server process only.
// Targets alternate (mediamtx, camgate, mediamtx, …) for -rounds rounds.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"time"
)

type options struct {
	scenario string
	readers  int
	duration time.Duration
	warmup   time.Duration
	rounds   int
	mediamtx string
	jsonOut  string
	bitrate  string
	redis    bool
	record   time.Duration
	segment  time.Duration
	proto    string
	cameras  int
	pprof    string
	gop      string // record: camgate's sessions.gop_cache
	nodes    int    // cluster: camgate nodes
	kills    int    // cluster: owners killed (SIGKILL) and restarted
}

// needs is what a scenario needs started beyond mediamtx and one camgate.
type needs struct {
	record  bool          // the camera records (archive)
	segment time.Duration // archive segment length
	redis   bool          // a redis-server and a second camgate node sharing it
	hls     bool          // mediamtx serves HLS too
	whep    bool          // mediamtx serves WebRTC (WHEP) too
	// ownNodes: the scenario starts its own camgate (and mediamtx) targets
	// per round; the origin gets relay paths rec<N> of its camera.
	ownNodes bool
	api      bool // mediamtx's API is on (paths and their readers)
}

type scenario struct {
	help  string
	run   func(ctx context.Context, env *env, o options) ([]result, error)
	needs func(o options) needs
}

var scenarios = map[string]scenario{
	"rtsp-fanout": {help: "N RTSP readers (TCP) of one camera: CPU per reader-second, memory per reader, packets received",
		run: runRTSPFanout},
	"ttff": {help: "time to first decodable frame for a new viewer, per protocol of -proto " +
		"(GOP cache vs waiting for the next keyframe; HLS: index, playlist, init and newest segment, " +
		"joining a running muxer or, with hls-cold, starting one)",
		run: runTTFF, needs: func(o options) needs {
			p := o.protos()
			return needs{hls: slices.Contains(p, "hls") || slices.Contains(p, "hls-cold"), whep: slices.Contains(p, "whep")}
		}},
	"revoke": {help: "N RTSP sessions of distinct viewers, each grant deleted via the API: time until each session ends " +
		"(p50/p99); -redis: revoke on node A, sessions on node B",
		run: runRevoke, needs: func(o options) needs { return needs{redis: o.redis} }},
	"links": {help: "share links: creation rate (POST /api/v1/links, N clients) and verification rate " +
		"(RTSP DESCRIBE with the link token vs a viewer JWT vs mediamtx without auth)",
		run: runLinks},
	"archive": {help: "records the camera, then N concurrent downloads (/archive/cam/download): MB/s vs reading " +
		"the same segment files raw from disk",
		run: runArchive, needs: func(o options) needs { return needs{record: true, segment: o.segment} }},
	"hls": {help: "N HLS viewers (playlist reload every 0.5 s, each new segment fetched once): requests/s, " +
		"server CPU per request, p50/p99 latency; mediamtx's LL-HLS muxer vs camgate's",
		run: runHLS, needs: func(options) needs { return needs{hls: true} }},
	"hls-latency": {help: "LL-HLS glass-to-glass latency in -readers headless Chromium pages (hls.js, lowLatencyMode): " +
		"now − program date time of the frame on screen p50/p95/max, distance to live edge, page load to first frame",
		run: runHLSLatency, needs: func(options) needs { return needs{hls: true} }},
	"hls-segment": {help: "CPU per HLS segment request: N keep-alive clients fetching camgate's newest segment " +
		"(authorized per request) vs nginx serving the same bytes as a static file, and a bare fasthttp server",
		run: runHLSSegment},
	"record": {help: "-cameras N recorded cameras (fMP4, -segment segments) on camgate and on a second mediamtx, " +
		"each pulling the origin's N relay paths: CPU and RSS per camera, bytes written vs stream bitrate, segment gaps",
		run: runRecord, needs: func(options) needs { return needs{ownNodes: true} }},
	"idle": {help: "-cameras N configured cameras nobody watches or records: start-up time, RSS and goroutines per camera, " +
		"upstream connections (mediamtx: N on-demand paths)",
		run: runIdle, needs: func(options) needs { return needs{ownNodes: true} }},
	"cluster": {help: "-nodes camgate nodes sharing a redis-server (cluster.enabled), -cameras N cameras (each its own origin path, " +
		"half recorded, one RTSP viewer each, spread over the nodes): upstream connections per camera, copies of each recorded " +
		"second, CPU per node vs one node doing everything; over -kills SIGKILLs of an owner (then restarted): failover time, " +
		"recording gap and viewer interruption p50/p99, time for the restarted node to take its share",
		run: runCluster, needs: func(options) needs { return needs{ownNodes: true, api: true} }},
	"whep": {help: "N WebRTC viewers (pion) over WHEP: server CPU per viewer-second and per packet, packets received",
		run: runWHEP, needs: func(options) needs { return needs{whep: true} }},
}

func main() {
	if path := os.Getenv(serveFileEnv); path != "" {
		if err := serveBareFastHTTP(path); err != nil {
			fmt.Fprintln(os.Stderr, "bench: bare fasthttp server:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.scenario, "scenario", "rtsp-fanout", "scenario to run (see below)")
	flag.IntVar(&o.readers, "readers", 50, "concurrent readers (rtsp-fanout), sessions (revoke), clients (links, archive), browser pages (hls-latency)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measurement window per round")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "settling time before each window")
	flag.IntVar(&o.rounds, "rounds", 3, "A/B rounds (mediamtx, camgate alternated)")
	flag.StringVar(&o.mediamtx, "mediamtx", "", "mediamtx binary (default: built by ../shared/tools/build-mediamtx)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	flag.StringVar(&o.bitrate, "bitrate", "2M", "video bitrate of the test clip")
	flag.BoolVar(&o.redis, "redis", false, "revoke: start redis-server and two camgate nodes sharing it (cross-node figure)")
	flag.DurationVar(&o.record, "record", 12*time.Second, "archive: how long to record before downloading")
	flag.StringVar(&o.proto, "proto", "rtsp", "ttff: protocols, comma-separated (rtsp, whep, hls, hls-cold: the first HLS viewer of a running camera)")
	flag.StringVar(&o.pprof, "pprof", "", "record: build camgate with pprof and save its CPU profile of each window and a heap profile at its end in this folder")
	flag.IntVar(&o.cameras, "cameras", 10, "record, idle, cluster: number of cameras")
	flag.DurationVar(&o.segment, "segment", 2*time.Second, "archive: segment duration (CAMGATE_ARCHIVE_SEGMENT_DURATION)")
	flag.IntVar(&o.nodes, "nodes", 3, "cluster: camgate nodes")
	flag.IntVar(&o.kills, "kills", 5, "cluster: owners killed (SIGKILL) and restarted, one after the other")
	flag.StringVar(&o.gop, "gop-cache", "viewers", "record: camgate's sessions.gop_cache (viewers: no GOP kept for cameras only recorded, as mediamtx keeps none; always: camgate's default)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./bench [flags]\n\nScenarios:\n")
		for _, name := range slices.Sorted(maps.Keys(scenarios)) {
			fmt.Fprintf(os.Stderr, "  %-12s %s\n", name, scenarios[name].help)
		}
		fmt.Fprintf(os.Stderr, "\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	sc, ok := scenarios[o.scenario]
	if !ok {
		return fmt.Errorf("unknown scenario %q (see -h)", o.scenario)
	}
	if o.readers < 1 || o.rounds < 1 || o.duration <= 0 {
		return errors.New("-readers, -rounds and -duration must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var need needs
	if sc.needs != nil {
		need = sc.needs(o)
	}
	env, err := newEnv(ctx, o, need)
	if err != nil {
		return err
	}
	defer env.close()
	load0 := loadAvg()
	res, err := sc.run(ctx, env, o)
	if err != nil {
		return err
	}
	load1 := loadAvg()
	printTable(os.Stdout, o.scenario, res)
	fmt.Printf("machine: %d cores; load average (1 min) %s before, %s after\n", runtime.NumCPU(), load0, load1)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"scenario": o.scenario, "options": map[string]any{
			"readers": o.readers, "duration": o.duration.String(), "warmup": o.warmup.String(), "rounds": o.rounds,
			"bitrate": o.bitrate, "redis": o.redis, "proto": o.proto, "cameras": o.cameras, "segment": o.segment.String(),
			"nodes": o.nodes, "kills": o.kills,
		}, "machine": map[string]any{"cores": runtime.NumCPU(), "load_before": load0, "load_after": load1},
			"results": res, "time": time.Now().UTC()}, "", "  ")
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// loadAvg is the 1-minute load average: the machine is shared, and a figure
// taken under load says so.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
