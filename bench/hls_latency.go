package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/camgate/camgate/internal/browsertest"
)

// hlsLatencyPage is the player: camgate's hls.js in low-latency mode, its
// defaults otherwise, playing the stream named by ?src=.
const hlsLatencyPage = `<!doctype html><html><head><meta charset="utf-8"><title>hls-latency</title></head>
<body style="margin:0;background:#000">
<video id="v" muted autoplay playsinline style="width:640px;height:360px"></video>
<script src="/hls.min.js"></script>
<script src="/player.js"></script>
</body></html>`

// hlsLatencyPlayer keeps its state in window.__bench for the bench to read
// through WebDriver: "loading", "playing" (from the first frame presented)
// or "error". Once playing it samples every 500 ms, while the video plays,
// [Date.now() − hls.playingDate, hls.latency, hls.targetLatency] in
// milliseconds: the wall-clock age of the frame on screen by its
// EXT-X-PROGRAM-DATE-TIME, hls.js's own distance to the live edge, and the
// distance it aims at (raised by a second at each stall). Stalls count from
// the first frame; reset only clears the samples.
const hlsLatencyPlayer = `(() => {
const b = window.__bench = {state: 'loading', err: '', first: -1, samples: [], missed: 0, stalls: 0};
if (!Hls.isSupported()) { b.state = 'error'; b.err = 'hls.js unsupported'; return; }
const v = document.getElementById('v');
const hls = new Hls({lowLatencyMode: true});
hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) { b.state = 'error'; b.err = d.type + ' ' + d.details; } });
v.addEventListener('waiting', () => { if (b.state === 'playing') b.stalls++; });
function sample() {
  const d = hls.playingDate;
  if (!d || v.paused || v.readyState < 3) { b.missed++; return; }
  b.samples.push([Date.now() - d.getTime(), hls.latency * 1000, hls.targetLatency * 1000]);
}
function playing(now) {
  if (b.state !== 'loading') return;
  b.state = 'playing';
  b.first = now; // ms since navigation start
  setInterval(sample, 500);
}
if (v.requestVideoFrameCallback) v.requestVideoFrameCallback((now) => playing(now));
else v.addEventListener('playing', () => playing(performance.now()));
b.reset = () => { b.samples = []; b.missed = 0; };
hls.loadSource(new URLSearchParams(location.search).get('src'));
hls.attachMedia(v);
v.play().catch(() => {});
})();`

// playerState is what the bench reads of window.__bench.
type playerState struct {
	State   string       `json:"state"`
	Err     string       `json:"err"`
	First   float64      `json:"first"`
	Samples [][3]float64 `json:"samples"`
	Missed  int          `json:"missed"`
	Stalls  int          `json:"stalls"`
}

// runHLSLatency plays the camera in -readers headless Chromium sessions with
// hls.js (LL-HLS) from mediamtx and from camgate, alternated, and reports
// the age of the frame on screen by its program date time, hls.js's
// distance to the live edge and the time from page load to first frame.
func runHLSLatency(ctx context.Context, e *env, o options) ([]result, error) {
	srv, err := startPlayerServer()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	// Resident plain viewers keep both muxers (and camgate's upstream)
	// running between rounds: a page joins a live stream, as in production.
	wctx, stopWarm := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWarm(); wg.Wait() }()
	targets := []target{{name: "mediamtx", url: e.hlsMtx}, {name: "camgate", url: e.hlsCam}}
	ages := map[string]*playlistAges{}
	for _, t := range targets {
		if err := waitHLSReady(ctx, t.url); err != nil {
			return nil, err
		}
		a := &playlistAges{}
		ages[t.name] = a
		wg.Add(1)
		go func() { defer wg.Done(); keepHLSWarm(wctx, t.url, a) }()
	}
	step("starting %d headless Chromium sessions", o.readers)
	browsers := make([]*browsertest.Session, o.readers)
	defer func() {
		for _, b := range browsers {
			if b != nil {
				b.Close()
			}
		}
	}()
	err = forEach(ctx, o.readers, 2, func(i int) error {
		// The page is the bench's, the stream another origin: both
		// servers answer with CORS headers.
		b, err := browsertest.Start(ctx)
		browsers[i] = b
		return err
	})
	if err != nil {
		return nil, err
	}
	// A fresh browser's first page load is slower (process start-up,
	// hls.js not cached yet): not to be charged to round 1's first target.
	for _, t := range targets {
		page := srv.url + "/player.html?src=" + url.QueryEscape(t.url)
		_, err := openPlayers(ctx, browsers, page, t.name+" browser warm-up (not measured)")
		closePlayers(ctx, browsers)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	var res []result
	for round := 1; round <= o.rounds; round++ {
		for _, t := range targets {
			page := srv.url + "/player.html?src=" + url.QueryEscape(t.url)
			label := fmt.Sprintf("%s round %d/%d, %d browser pages", t.name, round, o.rounds, o.readers)
			m, err := latencyRound(ctx, browsers, page, ages[t.name], o, label)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			res = append(res, result{Target: t.name, Round: round, Metrics: m})
		}
	}
	return res, nil
}

// latencyRound loads the player in every browser, waits for the first
// frame in all, lets playback settle for -warmup and samples for -duration.
func latencyRound(ctx context.Context, browsers []*browsertest.Session, page string, ages *playlistAges,
	o options, label string) (map[string]float64, error) {
	defer closePlayers(ctx, browsers)
	first, err := openPlayers(ctx, browsers, page, label)
	if err != nil {
		return nil, err
	}
	if err := waitCtx(ctx, o.warmup, label+" (warm-up)"); err != nil {
		return nil, err
	}
	for _, b := range browsers {
		if err := b.Execute(ctx, "window.__bench.reset(); return null", nil); err != nil {
			return nil, err
		}
	}
	ages.record(true)
	werr := waitCtx(ctx, o.duration, label)
	age := ages.record(false)
	if werr != nil {
		return nil, werr
	}
	var glass, edge, aim []float64
	missed, stalls := 0, 0
	for _, b := range browsers {
		st, err := readPlayer(ctx, b)
		if err != nil {
			return nil, err
		}
		if st.State != "playing" {
			return nil, fmt.Errorf("player %s: %s", st.State, st.Err)
		}
		for _, s := range st.Samples {
			glass = append(glass, s[0])
			edge = append(edge, s[1])
			aim = append(aim, s[2])
		}
		missed += st.Missed
		stalls += st.Stalls
	}
	if len(glass) == 0 {
		return nil, errors.New("no latency sample: the video never played during the window")
	}
	slices.Sort(glass)
	slices.Sort(edge)
	slices.Sort(aim)
	return map[string]float64{
		"glass_ms_p50":        percentile(glass, 50),
		"glass_ms_p95":        percentile(glass, 95),
		"glass_ms_max":        percentile(glass, 100),
		"edge_ms_p50":         percentile(edge, 50),
		"edge_ms_p95":         percentile(edge, 95),
		"first_frame_ms_p50":  percentile(first, 50),
		"first_frame_ms_max":  percentile(first, 100),
		"playlist_age_ms_p50": percentile(age, 50),
		"playlist_age_ms_p95": percentile(age, 95),
		"target_ms_max":       percentile(aim, 100),
		"stalls":              float64(stalls),
		"missed_samples_pct":  100 * float64(missed) / float64(missed+len(glass)),
	}, nil
}

// openPlayers loads the player page in every browser at once and returns,
// sorted, each page's time from navigation start to its first frame.
func openPlayers(ctx context.Context, browsers []*browsertest.Session, page, label string) ([]float64, error) {
	n := len(browsers)
	if err := forEach(ctx, n, n, func(i int) error { return browsers[i].Visit(ctx, page) }); err != nil {
		return nil, err
	}
	first := make([]float64, n)
	bar := newProgress(label+" (first frame)", n)
	err := forEach(ctx, n, n, func(i int) error {
		st, err := waitPlaying(ctx, browsers[i])
		if err == nil {
			first[i] = st.First
			bar.add(1)
		}
		return err
	})
	bar.done()
	slices.Sort(first)
	return first, err
}

// closePlayers ends playback (camgate's HLS session then idles out).
func closePlayers(ctx context.Context, browsers []*browsertest.Session) {
	for _, b := range browsers {
		_ = b.Visit(context.WithoutCancel(ctx), "about:blank")
	}
}

func readPlayer(ctx context.Context, b *browsertest.Session) (playerState, error) {
	var st playerState
	err := b.Execute(ctx, `const b = window.__bench; if (!b) return {state: 'loading'};
return {state: b.state, err: b.err, first: b.first, samples: b.samples, missed: b.missed, stalls: b.stalls};`, &st)
	return st, err
}

// waitPlaying polls the page until its first frame is presented.
func waitPlaying(ctx context.Context, b *browsertest.Session) (playerState, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := readPlayer(ctx, b)
		switch {
		case err != nil:
			return st, err
		case st.State == "playing":
			return st, nil
		case st.State == "error":
			return st, fmt.Errorf("hls.js: %s", st.Err)
		case time.Now().After(deadline):
			return st, errors.New("no frame displayed within 20 s")
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// playlistAges are a resident viewer's samples of how old the newest media
// in the playlist is when the playlist arrives, by its program date time:
// server packaging delay (at most a part behind, as parts are listed when
// complete), plus any drift of the program date time from the wall clock.
type playlistAges struct {
	mu sync.Mutex
	on bool
	v  []float64
}

func (a *playlistAges) add(ms float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.on {
		a.v = append(a.v, ms)
	}
}

// record clears the samples and starts (on) or stops recording; stopping
// returns the samples, sorted.
func (a *playlistAges) record(on bool) []float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.on = on
	v := a.v
	if on {
		a.v = nil
	}
	slices.Sort(v)
	return v
}

// playlistEnd is the program date time of the end of the newest media a
// media playlist lists: the last EXT-X-PROGRAM-DATE-TIME plus the segments
// and parts after it. ok is false without a program date time.
func playlistEnd(b []byte) (end time.Time, ok bool) {
	var pdt time.Time
	var segs, parts float64 // seconds after pdt: finished segments, parts of the next one
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
			t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"))
			if err != nil {
				return time.Time{}, false
			}
			pdt, segs, parts = t, 0, 0
		case strings.HasPrefix(l, "#EXTINF:"):
			d, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			f, _ := strconv.ParseFloat(d, 64)
			segs, parts = segs+f, 0 // its parts were listed before it
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			_, rest, _ := strings.Cut(l, "DURATION=")
			d, _, _ := strings.Cut(rest, ",")
			f, _ := strconv.ParseFloat(d, 64)
			parts += f
		}
	}
	if pdt.IsZero() {
		return time.Time{}, false
	}
	return pdt.Add(time.Duration((segs + parts) * float64(time.Second))), true
}

// keepHLSWarm is a viewer reloading the media playlist every 0.5 s (no
// segments) until ctx ends, recording the age of each playlist's newest
// media; it starts over after an error.
func keepHLSWarm(ctx context.Context, index string, ages *playlistAges) {
	for ctx.Err() == nil {
		v := newHLSViewer(index, &hlsStats{})
		err := v.start(ctx)
		for err == nil {
			var b []byte
			if b, err = v.get(ctx, v.media.String(), false); err != nil {
				break
			}
			if end, ok := playlistEnd(b); ok {
				ages.add(ms(time.Since(end)))
			}
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		v.client.CloseIdleConnections()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// playerServer serves the player page, its script and camgate's hls.js.
type playerServer struct {
	url string
	srv *http.Server
}

func startPlayerServer() (*playerServer, error) {
	// The bench runs from the repository root (it builds ./cmd/camgate).
	hlsJS, err := os.ReadFile(filepath.Join("links", "assets", "hls.min.js"))
	if err != nil {
		return nil, fmt.Errorf("camgate's hls.js (run the bench from the repository root): %w", err)
	}
	mux := http.NewServeMux()
	serve := func(path, ctype string, body []byte) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "max-age=3600")
			_, _ = w.Write(body)
		})
	}
	serve("/player.html", "text/html; charset=utf-8", []byte(hlsLatencyPage))
	serve("/player.js", "text/javascript", []byte(hlsLatencyPlayer))
	serve("/hls.min.js", "text/javascript", hlsJS)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &playerServer{url: "http://" + ln.Addr().String(), srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *playerServer) Close() { _ = s.srv.Close() }
