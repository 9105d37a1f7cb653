package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/browsertest"
)

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct{ p, want float64 }{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {0, 1}} {
		if got := percentile(v, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestParseSegment(t *testing.T) {
	got, err := parseSegment("2026-11-22_10-00-01-250000")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 22, 10, 0, 1, 250e6, time.UTC); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "2026-11-22_10-00-01", "2026-11-22_10-00-01_250000", "x026-11-22_10-00-01-250000"} {
		if _, err := parseSegment(bad); err == nil {
			t.Errorf("parseSegment(%q) accepted", bad)
		}
	}
}

func TestPlaylistParsing(t *testing.T) {
	pl := []byte("#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?s=1\"\n#EXT-X-GAP\n#EXTINF:1,\ngap.mp4\n#EXTINF:1,\nseg1.mp4?s=1\n#EXT-X-PART:URI=\"p.mp4\"\n#EXTINF:1,\nseg2.mp4?s=1\n")
	if got := mapURI(pl); got != "init.mp4?s=1" {
		t.Errorf("mapURI = %q", got)
	}
	if got := strings.Join(playlistURIs(pl), ","); got != "seg1.mp4?s=1,seg2.mp4?s=1" {
		t.Errorf("playlistURIs = %q", got)
	}
}

func TestPrintTableRatios(t *testing.T) {
	var b bytes.Buffer
	printTable(&b, "x", []result{
		{Target: "raw disk", Round: 1, Metrics: map[string]float64{"mb_per_s": 100}},
		{Target: "camgate", Round: 1, Metrics: map[string]float64{"mb_per_s": 40, "only_here": 1}},
		{Target: "raw disk", Round: 2, Metrics: map[string]float64{"mb_per_s": 300}},
		{Target: "camgate", Round: 2, Metrics: map[string]float64{"mb_per_s": 60, "only_here": 1}},
	})
	out := b.String()
	for _, want := range []string{"camgate ÷ raw disk", "200.000", "50.000", "0.25", "mean of 2 rounds"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if line := lineWith(out, "only_here"); !strings.Contains(line, "-") {
		t.Errorf("a metric missing for a target must print -: %q", line)
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestDescribe runs the bare RTSP client against a scripted server: two
// DESCRIBEs on one connection, each answer with a body to skip.
func TestDescribe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := textproto.NewReader(bufio.NewReader(c))
		var lines []string
		for i, code := range []string{"200 OK", "401 Unauthorized"} {
			line, _ := r.ReadLine()
			h, _ := r.ReadMIMEHeader()
			lines = append(lines, line+" cseq="+h.Get("Cseq"))
			body := "v=0\r\n"
			if i == 1 {
				body = ""
			}
			c.Write([]byte("RTSP/1.0 " + code + "\r\nCSeq: 1\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body))
		}
		got <- lines
	}()
	url := "rtsp://" + l.Addr().String() + "/cam?token=abc"
	c, err := dialRTSPConn(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, want := range []int{200, 401} {
		code, err := c.describe(url)
		if err != nil || code != want {
			t.Fatalf("describe = %d, %v; want %d", code, err, want)
		}
	}
	lines := <-got
	if lines[0] != "DESCRIBE "+url+" RTSP/1.0 cseq=1" || lines[1] != "DESCRIBE "+url+" RTSP/1.0 cseq=2" {
		t.Errorf("server saw %q", lines)
	}
}

func TestPlaylistEnd(t *testing.T) {
	pl := []byte("#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2026-11-23T00:31:20.512Z\n#EXTINF:2.00000,\nseg1.mp4\n" +
		"#EXT-X-PROGRAM-DATE-TIME:2026-11-23T00:31:22.512Z\n#EXT-X-PART:DURATION=0.20000,URI=\"p1.mp4\",INDEPENDENT=YES\n" +
		"#EXT-X-PART:DURATION=0.20000,URI=\"p2.mp4\"\n#EXTINF:2.00000,\nseg2.mp4\n" +
		"#EXT-X-PART:DURATION=0.20000,URI=\"p3.mp4\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p4.mp4\"\n")
	end, ok := playlistEnd(pl)
	if want := time.Date(2026, 11, 23, 0, 31, 24, 712e6, time.UTC); !ok || !end.Equal(want) {
		t.Errorf("playlistEnd = %v, %v; want %v", end, ok, want)
	}
	if _, ok := playlistEnd([]byte("#EXTM3U\n#EXTINF:2,\nseg.mp4\n")); ok {
		t.Error("playlistEnd without a program date time reported one")
	}
}

// TestHLSLatency runs the hls-latency scenario for one short round with
// one browser page: both servers play, and the figures are plausible.
func TestHLSLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("starts mediamtx, ffmpeg, camgate and Chromium (about 40 s)")
	}
	mtx := filepath.Join(os.Getenv("HOME"), ".cache", "camgate-tools", "mediamtx-v1.20.1")
	if _, err := os.Stat(mtx); err != nil {
		t.Skipf("mediamtx is not built (../shared/tools/build-mediamtx builds it): %v", err)
	}
	for _, p := range []string{"ffmpeg", browsertest.ChromiumPath, browsertest.ChromedriverPath} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is required: apt-get install -y ffmpeg chromium chromium-driver (or run scripts/test)", p)
		}
	}
	o := options{scenario: "hls-latency", readers: 1, rounds: 1, duration: 3 * time.Second, warmup: time.Second,
		mediamtx: mtx, bitrate: "1M"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The bench runs from the repository root: it builds ./cmd/camgate
	// and reads links/assets.
	t.Chdir("..")
	e, err := newEnv(ctx, o, needs{hls: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	res, err := runHLSLatency(ctx, e, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("got %d results, want mediamtx and camgate", len(res))
	}
	for _, r := range res {
		t.Logf("%s: %v", r.Target, r.Metrics)
		for _, m := range []string{"glass_ms_p50", "glass_ms_max", "first_frame_ms_max", "playlist_age_ms_p50"} {
			// Above 0 (a frame shown before it was received would be a
			// clock mix-up), below 10 s (hls.js keeps ~3 parts behind).
			if v := r.Metrics[m]; !(v > 0 && v < 10000) {
				t.Errorf("%s %s = %v ms, want within (0, 10 s)", r.Target, m, v)
			}
		}
	}
}

// TestKickHLSSessions runs hls-cold's muxer stop against a fake admin API:
// every HLS session of the camera is deleted, nothing else, and it returns
// once none is listed.
func TestKickHLSSessions(t *testing.T) {
	var mu sync.Mutex
	sessions := map[string][2]string{ // id → protocol, camera
		"h1": {"hls", "cam"}, "h2": {"hls", "cam"}, "r1": {"rtsp", "cam"}, "o1": {"hls", "other"},
	}
	var deleted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+benchAdminKey {
			http.Error(w, "no admin key", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch id, ok := strings.CutPrefix(r.URL.Path, "/api/v1/sessions/"); {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/sessions":
			var list []map[string]string
			for id, s := range sessions {
				list = append(list, map[string]string{"id": id, "protocol": s[0], "camera": s[1]})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"sessions": list})
		case r.Method == http.MethodDelete && ok:
			if _, found := sessions[id]; !found {
				http.Error(w, "no such session", http.StatusNotFound)
				return
			}
			delete(sessions, id)
			deleted = append(deleted, id)
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusMethodNotAllowed)
		}
	}))
	defer srv.Close()
	n := &node{name: "A", http: srv.URL}
	if err := n.kickHLSSessions(context.Background(), "cam"); err != nil {
		t.Fatal(err)
	}
	slices.Sort(deleted)
	if got := strings.Join(deleted, ","); got != "h1,h2" {
		t.Errorf("deleted %q, want h1,h2 (the camera's HLS sessions only)", got)
	}
	if err := n.kickHLSSessions(context.Background(), "cam"); err != nil || len(deleted) != 2 {
		t.Errorf("second call: %v, deleted %q; want nothing more to do", err, deleted)
	}
}
