package hls

import (
	"log/slog"
	"math"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/camgate/camgate/internal/mediatest"
)

// TestCameraCodecRows publishes each camera codec row with ffmpeg and reads
// camgate's HLS with ffprobe, as a viewer with `sound` (alice) and one
// without (bob).
func TestCameraCodecRows(t *testing.T) {
	t.Parallel()
	x264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p"}
	x265 := []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "bframes=0:log-level=error", "-pix_fmt", "yuv420p"}
	rows := []struct {
		clip       mediatest.Clip
		alice, bob string // ffprobe's codecs; "" for the 415
		dropped    string // AudioDroppedHeader on alice's playlist
		transcode  bool   // Server.TranscodeAudio
	}{
		{mediatest.Clip{Name: "h264-aac", Video: x264, Ext: "mkv", AudioCodec: "aac", Beep: true}, "aac,h264", "h264", "", false},
		{mediatest.Clip{Name: "h265-aac", Video: x265, Ext: "mkv", AudioCodec: "aac"}, "aac,hevc", "hevc", "", false},
		{mediatest.Clip{Name: "h264-pcma", Video: x264, Ext: "mkv", AudioCodec: "pcm_alaw", Beep: true}, "aac,h264", "h264", "", true},
		{mediatest.Clip{Name: "h264-pcmu", Video: x264, Ext: "mkv", AudioCodec: "pcm_mulaw", Beep: true}, "aac,h264", "h264", "", true},
		{mediatest.Clip{Name: "h264-pcma-no-transcoding", Video: x264, Ext: "mkv", AudioCodec: "pcm_alaw"}, "h264", "h264", "G711", false},
		{mediatest.Clip{Name: "h265-pcmu-no-transcoding", Video: x265, Ext: "mkv", AudioCodec: "pcm_mulaw"}, "hevc", "hevc", "G711", false},
		{mediatest.Clip{Name: "h264-bframes", Video: []string{"-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-pix_fmt", "yuv420p"}, Ext: "mkv"}, "h264", "h264", "", false},
		{mediatest.Clip{Name: "mjpeg", Video: []string{"-c:v", "mjpeg", "-huffman", "default", "-pix_fmt", "yuvj420p", "-q:v", "5"}, Ext: "mkv"}, "", "", "", false},
	}
	for _, row := range rows {
		t.Run(row.clip.Name, func(t *testing.T) {
			up := mediatest.StartUpstream(t)
			mediatest.Publish(t, up, row.clip)
			h := newHarnessFrom(t, up.URL(), func(s *Server) {
				s.Logger = slog.New(slog.NewTextHandler(tlog{t}, nil))
				s.TranscodeAudio = row.transcode
			})
			for _, v := range []struct{ token, want string }{{"alice", row.alice}, {"bob", row.bob}} {
				url := h.base + "/hls/cam1/index.m3u8?token=" + v.token
				if v.want == "" {
					r := fetch(t, http.MethodGet, url, "")
					if r.status != http.StatusUnsupportedMediaType || !strings.Contains(r.body, "M-JPEG") {
						t.Fatalf("%s: %d %s, want 415 naming the codec", v.token, r.status, r.body)
					}
					continue
				}
				codecs, stderr, err := mediatest.Probe(t, url)
				if err != nil {
					t.Fatalf("%s: ffprobe: %v: %s", v.token, err, stderr)
				}
				if got := strings.Join(codecs, ","); got != v.want {
					t.Fatalf("%s: tracks %q, want %q", v.token, got, v.want)
				}
			}
			if row.alice == "" {
				return
			}
			r := fetch(t, http.MethodGet, h.base+"/hls/cam1/index.m3u8?token=alice", "")
			if got := r.header.Get(AudioDroppedHeader); r.status != http.StatusOK || got != row.dropped {
				t.Fatalf("alice's playlist: %d, %s %q, want %q", r.status, AudioDroppedHeader, got, row.dropped)
			}
			if exp := r.header.Get("Access-Control-Expose-Headers"); row.dropped != "" && exp != AudioDroppedHeader {
				t.Fatalf("Access-Control-Expose-Headers %q", exp)
			}
			if row.transcode || row.clip.Name == "h264-aac" {
				assertTone(t, h.base+"/hls/cam1/index.m3u8?token=alice")
				assertLipSync(t, h.base+"/hls/cam1/index.m3u8?token=alice")
			}
		})
	}
}

// assertTone decodes 3 s of the HLS audio with ffmpeg: the publisher's
// 1 kHz sine (about -21 dB mean), not silence (-91 dB) and not missing.
func assertTone(t *testing.T, url string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", url, "-map", "0:a", "-t", "3",
		"-af", "volumedetect", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg cannot decode the HLS audio: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`mean_volume: (-?[0-9.]+) dB`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no volume measured:\n%s", out)
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v < -40 {
		t.Fatalf("the HLS audio is silent (mean %v dB):\n%s", v, out)
	}
}

// assertLipSync measures lip sync at the player: the publisher beeps at
// every whole second of its audio, where its video has a keyframe (Beep
// clips), so in camgate's HLS each beep must start where a keyframe is
// shown, modulo whole seconds. The AAC encoder's priming (1024 samples,
// 21 ms at 48 kHz) delays the decoded beep a little. Before the capture
// clock the audio was placed by its packets' arrival: the beep came 146 ms late
// (the test publisher sends 7 AAC frames a packet).
func assertLipSync(t *testing.T, url string) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-skip_frame", "nokey",
		"-read_intervals", "%+4", "-show_entries", "frame=pts_time", "-of", "csv=p=0", url).Output()
	if err != nil {
		t.Fatalf("ffprobe keyframes: %v", err)
	}
	var keys []float64
	for _, f := range strings.Fields(string(out)) {
		if v, err := strconv.ParseFloat(strings.TrimSuffix(f, ","), 64); err == nil {
			keys = append(keys, v)
		}
	}
	out, err = exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-copyts", "-t", "4", "-i", url, "-map", "0:a",
		"-af", "highpass=f=1300,highpass=f=1300,silencedetect=noise=-35dB:d=0.01", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg beeps: %v\n%s", err, out)
	}
	// A beep ends a silence of 0.96 s (the first one and the input's end
	// end shorter ones).
	var beeps []float64
	for _, m := range regexp.MustCompile(`silence_end: (-?[0-9.]+) \| silence_duration: ([0-9.]+)`).FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		if d, _ := strconv.ParseFloat(string(m[2]), 64); d > 0.9 && d < 1 {
			beeps = append(beeps, v)
		}
	}
	if len(keys) < 2 || len(beeps) < 2 {
		t.Fatalf("keyframes %v, beeps %v: want at least 2 of each\n%s", keys, beeps, out[max(0, len(out)-3000):])
	}
	for _, b := range beeps {
		off := math.Remainder(b-keys[0], 1)
		if off < -0.06 || off > 0.06 {
			t.Fatalf("a beep starts %.0f ms from its keyframe (beeps %v, keyframes %v), want within 60 ms", off*1000, beeps, keys)
		}
	}
	t.Logf("lip sync: beeps %v, keyframes %v", beeps, keys)
}

// tlog writes a logger's lines to the test log.
type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }
