package webrtc

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
)

// playWith posts the offer of a viewer offering only videoMimes (none:
// pion's defaults, H264 and H265 among them).
func (h *harness) playWith(t *testing.T, token string, videoMimes ...string) (*viewer, httpResult) {
	t.Helper()
	v := newViewerPC(t, videoMimes...)
	res := h.do(t, "POST", "/whep/cam1", token, "application/sdp", v.offer(t))
	if res.status == http.StatusCreated {
		v.answer = res.body
		if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: res.body}); err != nil {
			t.Fatal(err)
		}
	}
	return v, res
}

// TestCameraCodecRows publishes each camera codec row with ffmpeg and plays
// it over WHEP as alice (sound) with pion viewers offering H264 and H265 or
// only H264.
func TestCameraCodecRows(t *testing.T) {
	x264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p"}
	x265 := []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "bframes=0:log-level=error", "-pix_fmt", "yuv420p"}
	rows := []struct {
		clip      mediatest.Clip
		offer     []string // video codecs offered; nil: H264 and H265
		status    int
		video     string // codec of the video track, or what the refusal says
		audio     string // codec of the audio track; "": the audio section is inactive
		transcode bool   // Server.TranscodeAudio
	}{
		{mediatest.Clip{Name: "h264-aac", Video: x264, Ext: "mkv", AudioCodec: "aac"}, nil, 201, webrtc.MimeTypeH264, webrtc.MimeTypeOpus, true},
		{mediatest.Clip{Name: "h264-aac-no-transcoding", Video: x264, Ext: "mkv", AudioCodec: "aac"}, nil, 201, webrtc.MimeTypeH264, "", false},
		{mediatest.Clip{Name: "h264-pcma", Video: x264, Ext: "mkv", AudioCodec: "pcm_alaw"}, nil, 201, webrtc.MimeTypeH264, webrtc.MimeTypePCMA, true},
		{mediatest.Clip{Name: "h265-aac", Video: x265, Ext: "mkv", AudioCodec: "aac"}, nil, 201, webrtc.MimeTypeH265, webrtc.MimeTypeOpus, true},
		{mediatest.Clip{Name: "h265-pcmu-h264-offer", Video: x265, Ext: "mkv", AudioCodec: "pcm_mulaw"}, []string{webrtc.MimeTypeH264}, 415, "camera sends H265; the offer has only H264", "", true},
		{mediatest.Clip{Name: "mjpeg", Video: []string{"-c:v", "mjpeg", "-huffman", "default", "-pix_fmt", "yuvj420p", "-q:v", "5"}, Ext: "mkv"}, nil, 400, "sends M-JPEG video", "", true},
	}
	for _, row := range rows {
		t.Run(row.clip.Name, func(t *testing.T) {
			up := mediatest.StartUpstream(t)
			mediatest.Publish(t, up, row.clip)
			h := newHarnessFrom(t, up.URL(), func(s *Server) { s.TranscodeAudio = row.transcode })
			v, res := h.playWith(t, "alice", row.offer...)
			if res.status != row.status {
				t.Fatalf("POST: %d %s, want %d", res.status, res.body, row.status)
			}
			if row.status != http.StatusCreated {
				if !strings.Contains(res.body, row.video) {
					t.Fatalf("refusal %q does not say %q", res.body, row.video)
				}
				return
			}
			if got := mediaDirection(t, v.answer, "audio"); (got == "sendonly") != (row.audio != "") {
				t.Fatalf("answer's audio direction is %q; audio %q", got, row.audio)
			}
			want := map[string]bool{row.video: true}
			if row.audio != "" {
				want[row.audio] = true
			}
			for len(want) > 0 {
				tr := v.nextTrack(t)
				mt := tr.Codec().MimeType
				if !want[mt] {
					t.Fatalf("track %s, want %v", mt, want)
				}
				delete(want, mt)
				_ = tr.SetReadDeadline(time.Now().Add(5 * time.Second))
				if mt == webrtc.MimeTypeOpus && row.clip.AudioCodec == "aac" {
					assertOpusTone(t, tr)
					continue
				}
				if _, _, err := tr.ReadRTP(); err != nil {
					t.Fatalf("%s packet: %v", mt, err)
				}
			}
		})
	}
}

// assertOpusTone reads 2 s of the transcoded audio track and decodes it
// with ffmpeg: the publisher's sine, not silence, in 20 ms packets with
// 48 kHz timestamps.
func assertOpusTone(t *testing.T, tr *webrtc.TrackRemote) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "audio.ogg")
	w, err := oggwriter.New(file, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	var last uint32
	for i := range 100 {
		p, _, err := tr.ReadRTP()
		if err != nil {
			t.Fatalf("opus packet %d: %v", i, err)
		}
		if i > 0 && p.Timestamp-last != 960 {
			t.Logf("opus packet %d: timestamp step %d", i, p.Timestamp-last)
		}
		last = p.Timestamp
		if err := w.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", file, "-af", "volumedetect", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg cannot decode the Opus: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`mean_volume: (-?[0-9.]+) dB`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no volume measured:\n%s", out)
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v < -40 {
		t.Fatalf("the transcoded audio is silent (mean %v dB)", v)
	}
}

// TestBFramesAreRefused: a camera sending H264 with B-frames is refused
// with the reason (at once, or after the first viewer's tracks saw frames
// out of order, which closes it), and its viewers are closed.
func TestBFramesAreRefused(t *testing.T) {
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, mediatest.Clip{Name: "h264-bframes", Ext: "mkv",
		Video: []string{"-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-pix_fmt", "yuv420p"}})
	h := newHarnessFrom(t, up.URL())
	var last httpResult
	poll.Until(t, "a 400 naming B-frames", func() bool {
		_, last = h.playWith(t, "bob")
		return last.status == http.StatusBadRequest
	})
	if !strings.Contains(last.body, "B-frames") {
		t.Fatalf("refusal %q does not name B-frames", last.body)
	}
}
