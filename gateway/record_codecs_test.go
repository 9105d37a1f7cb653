package gateway

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
)

// TestRecordsEveryCodecFMP4Holds records real ffmpeg publishers (the
// cameras people own) through one gateway: G.711 A-law and µ-law audio is
// recorded (as 16-bit PCM), M-JPEG video is recorded; the MP4 download
// carries them (ffprobe reads pcm_s16be and mjpeg), HLS VOD does what the
// live HLS does (G.711 played as AAC, in sync; M-JPEG a 415); a camera
// with an audio codec fMP4 cannot hold records its video and says so; a
// camera with nothing recordable is one WARN and a state, not re-dialled.
func TestRecordsEveryCodecFMP4Holds(t *testing.T) {
	// -huffman default: RTP/JPEG (RFC 2435) carries only the standard
	// tables; with ffmpeg's default optimal ones its muxer sends nothing.
	x264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p"}
	rows := []struct {
		cam   string
		clip  mediatest.Clip
		init  string // the recorded tracks, from the segment's init
		dl    string // ffprobe of the MP4 download with sound
		hls   int    // status of the VOD playlist for a viewer with sound
		drops string // its X-Camgate-Audio-Dropped
	}{
		{"pcma", mediatest.Clip{Name: "h264-pcma", Video: x264, Ext: "mkv", AudioCodec: "pcm_alaw", Beep: true}, "H264,LPCM/16/8000/1", "h264,pcm_s16be", 200, ""},
		{"pcmu", mediatest.Clip{Name: "h264-pcmu", Video: x264, Ext: "mkv", AudioCodec: "pcm_mulaw", Beep: true}, "H264,LPCM/16/8000/1", "h264,pcm_s16be", 200, ""},
		{"mjpeg", mediatest.Clip{Name: "mjpeg", Video: []string{"-c:v", "mjpeg", "-huffman", "default", "-pix_fmt", "yuvj420p", "-q:v", "5"}, Ext: "mkv"}, "MJPEG/320x240", "mjpeg", 415, ""},
		{"g722", mediatest.Clip{Name: "h264-g722", Video: x264, Ext: "mkv", AudioCodec: "g722"}, "H264", "h264", 200, ""},
	}
	ups := map[string]*mediatest.Upstream{}
	var cams []config.Camera
	for _, r := range rows {
		up := mediatest.StartUpstream(t)
		mediatest.Publish(t, up, r.clip)
		ups[r.cam] = up
		cams = append(cams, config.Camera{ID: r.cam, Site: "hq", Source: up.URL(), Record: true})
	}
	vp8 := mediatest.StartUpstream(t)
	mediatest.Publish(t, vp8, mediatest.Clip{Name: "vp8", Video: []string{"-c:v", "libvpx", "-deadline", "realtime", "-b:v", "300k"}, Ext: "mkv"})
	cams = append(cams, config.Camera{ID: "vp8", Site: "hq", Source: vp8.URL(), Record: true})

	logs := &syncBuffer{}
	dir := t.TempDir()
	n := startNodeWithLogger(t, dir, func(c *config.Config) {
		c.Cameras = cams
		c.Archive.SegmentDuration = config.Duration(time.Second)
	}, slog.New(slog.NewTextHandler(logs, nil)))
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user"}`, 200)
	for _, r := range rows {
		mustCall(t, n, "PUT", "/grants/a-"+r.cam, `{"subject":"alice","device":"`+r.cam+`","actions":["archive","download","sound"]}`, 200)
		mustCall(t, n, "PUT", "/grants/b-"+r.cam, `{"subject":"bob","device":"`+r.cam+`","actions":["archive","download"]}`, 200)
	}
	alice, bob := viewerToken(t, "alice"), viewerToken(t, "bob")

	// The unrecordable camera: one WARN and the state, its stream released.
	poll.Until(t, "vp8 in cannot_record", func() bool { return camRecordingState(t, n, "vp8")["state"] == "cannot_record" })
	st := camRecordingState(t, n, "vp8")
	if reason, _ := st["reason"].(string); !strings.Contains(reason, "video/VP8") {
		t.Fatalf("cannot_record reason: %v", st)
	}
	poll.Until(t, "the vp8 camera released", func() bool { return vp8.Readers() == 0 })

	for _, r := range rows {
		poll.Within(t, 60*time.Second, "2 segments of "+r.cam, func() bool {
			return len(n.g.archive.Segments(r.cam, time.Time{}, time.Now().Add(time.Hour))) >= 2
		})
	}
	base := "http://" + n.g.HTTPAddr().String() + "/archive/"
	q := "?start=" + time.Now().UTC().Add(-5*time.Minute).Format(time.RFC3339) + "&end=" + time.Now().UTC().Add(time.Minute).Format(time.RFC3339) + "&token="
	for _, r := range rows {
		t.Run(r.cam, func(t *testing.T) {
			if got := recordedTracks(t, filepath.Join(dir, "archive", r.cam)); got != r.init {
				t.Errorf("recorded tracks %s, want %s", got, r.init)
			}
			if got := probeDownload(t, base+r.cam+"/download"+q+alice); got != r.dl {
				t.Errorf("download with sound: %s, want %s", got, r.dl)
			}
			video := strings.Split(r.dl, ",")[0]
			if got := probeDownload(t, base+r.cam+"/download"+q+bob); got != video {
				t.Errorf("download without sound: %s, want %s", got, video)
			}
			code, hdr, body := httpGet(t, http.DefaultClient, base+r.cam+"/index.m3u8"+q+alice)
			if code != r.hls || hdr.Get(archive.AudioDroppedHeader) != r.drops {
				t.Fatalf("VOD playlist: %d %q %s, want %d %q", code, hdr.Get(archive.AudioDroppedHeader), body, r.hls, r.drops)
			}
			if code == 415 && !strings.Contains(body, "M-JPEG") {
				t.Errorf("VOD 415 does not name the codec: %s", body)
			}
			if code == 200 {
				// G.711, recorded as PCM, plays as AAC, as in the live HLS.
				want := "h264"
				if strings.Contains(r.init, "LPCM") {
					want = "aac,h264"
				}
				codecs, stderr, err := mediatest.Probe(t, base+r.cam+"/index.m3u8"+q+alice)
				if err != nil || strings.Join(codecs, ",") != want {
					t.Errorf("ffprobe of the VOD playlist: %v %v %s, want %s", codecs, err, stderr, want)
				}
				if codecs, _, err := mediatest.Probe(t, base+r.cam+"/index.m3u8"+q+bob); err != nil || strings.Join(codecs, ",") != "h264" {
					t.Errorf("ffprobe of the VOD playlist without sound: %v %v", codecs, err)
				}
				if want != "h264" {
					mediatest.AssertTone(t, base+r.cam+"/index.m3u8"+q+alice)
					mediatest.AssertLipSync(t, base+r.cam+"/index.m3u8"+q+alice)
				}
			}
			st := camRecordingState(t, n, r.cam)
			if st["state"] != "recording" {
				t.Errorf("recording state %v", st)
			}
			if r.cam == "g722" && fmt.Sprint(st["not_recorded"]) != "[audio/G722]" {
				t.Errorf("g722 camera: not_recorded %v", st["not_recorded"])
			}
		})
	}

	// While the others recorded (seconds; the old backoff re-dialled at
	// 0.5, 1, 2, 4 s), the unrecordable camera was dialled once.
	if plays := vp8.Plays(); plays != 1 {
		t.Fatalf("the vp8 camera was dialled %d times, want 1", plays)
	}
	_, _, metrics := httpGet(t, http.DefaultClient, "http://"+n.g.HTTPAddr().String()+"/metrics")
	if !strings.Contains(metrics, `camgate_recording_state{camera="vp8",state="cannot_record"} 1`) ||
		!strings.Contains(metrics, `camgate_recording_state{camera="pcma",state="recording"} 1`) {
		t.Errorf("metrics lack the recording states:\n%s", grepLines(metrics, "camgate_recording_state"))
	}
	// Changing the device tries again, once; the same codecs give no second WARN.
	mustCall(t, n, "PUT", "/devices/vp8", `{"site":"hq","kind":"camera","name":"VP8 cam","source":"`+vp8.URL()+`","record":true}`, 200)
	poll.Until(t, "the vp8 camera re-dialled after its change", func() bool { return vp8.Plays() == 2 })
	poll.Until(t, "vp8 back in cannot_record, released", func() bool {
		return camRecordingState(t, n, "vp8")["state"] == "cannot_record" && vp8.Readers() == 0
	})
	if c := strings.Count(logs.String(), "camera cannot be recorded"); c != 1 {
		t.Errorf("%d cannot-record WARNs, want 1:\n%s", c, grepLines(logs.String(), "cannot be recorded"))
	}
	if c := strings.Count(logs.String(), "recording without tracks the archive cannot store"); c != 1 {
		t.Errorf("%d not-recorded WARNs for the g722 camera, want 1", c)
	}
}

func camRecordingState(t *testing.T, n *node, cam string) map[string]any {
	t.Helper()
	out := mustCall(t, n, "GET", "/cameras/"+cam, "", 200)
	st, _ := out["recording_state"].(map[string]any)
	return st
}

// recordedTracks describes the tracks of the first segment file of a
// camera's folder, read with mediacommon's fMP4 parser.
func recordedTracks(t *testing.T, dir string) string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".mp4") {
			files = append(files, p)
		}
		return nil
	})
	slices.Sort(files)
	if len(files) == 0 {
		t.Fatalf("no segment in %s", dir)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		t.Fatalf("init of %s: %v", files[0], err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil || len(parts) == 0 {
		t.Fatalf("fragments of %s: %d, %v", files[0], len(parts), err)
	}
	samples := map[int]int{}
	for _, p := range parts {
		for _, pt := range p.Tracks {
			samples[pt.ID] += len(pt.Samples)
		}
	}
	var out []string
	for _, tr := range init.Tracks {
		if samples[tr.ID] == 0 {
			t.Errorf("track %d (%T) has no samples", tr.ID, tr.Codec)
		}
		switch c := tr.Codec.(type) {
		case *codecs.H264:
			out = append(out, "H264")
		case *codecs.LPCM:
			out = append(out, fmt.Sprintf("LPCM/%d/%d/%d", c.BitDepth, c.SampleRate, c.ChannelCount))
			if c.LittleEndian {
				t.Error("LPCM recorded little-endian")
			}
		case *codecs.MJPEG:
			out = append(out, fmt.Sprintf("MJPEG/%dx%d", c.Width, c.Height))
		default:
			out = append(out, fmt.Sprintf("%T", c))
		}
	}
	return strings.Join(out, ",")
}

// probeDownload saves an MP4 download and returns ffprobe's codecs.
func probeDownload(t *testing.T, url string) string {
	t.Helper()
	code, _, body := httpGet(t, http.DefaultClient, url)
	if code != 200 {
		t.Fatalf("download: %d %s", code, body)
	}
	f := filepath.Join(t.TempDir(), "dl.mp4")
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	codecs, stderr, err := mediatest.Probe(t, f)
	if err != nil {
		t.Fatalf("ffprobe of the download: %v %s", err, stderr)
	}
	return strings.Join(codecs, ",")
}

// httpGet fetches url with c and returns its status, headers and body.
func httpGet(t *testing.T, c *http.Client, url string) (int, http.Header, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
