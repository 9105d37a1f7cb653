package hls

import (
	"log/slog"
	"net/http"
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
				mediatest.AssertTone(t, h.base+"/hls/cam1/index.m3u8?token=alice")
				mediatest.AssertLipSync(t, h.base+"/hls/cam1/index.m3u8?token=alice")
			}
		})
	}
}

// tlog writes a logger's lines to the test log.
type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }
