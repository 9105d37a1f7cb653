package mediatest

import (
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// AssertTone decodes 3 s of an HLS stream's audio with ffmpeg: the
// publisher's 440 Hz sine (about -21 dB mean), not silence (-91 dB) and
// not missing.
func AssertTone(t testing.TB, url string) {
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

// AssertLipSync measures lip sync at the player: the publisher beeps at
// every whole second of its audio, where its video has a keyframe (Beep
// clips), so in the HLS at url each beep must start where a keyframe is
// shown, modulo whole seconds. The AAC encoder's priming (1024 samples,
// 21 ms at 48 kHz) delays the decoded beep a little. Before gateway/source's
// capture clock the audio was placed by its packets' arrival: the beep
// came 146 ms late in live HLS (the test publisher sends 7 AAC frames a
// packet).
func AssertLipSync(t testing.TB, url string) {
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
	// ffmpeg's filters see times from the input's start (which it prints),
	// silencedetect with 6 digits: the keyframes are taken from there too.
	out, err = exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-t", "4", "-i", url, "-map", "0:a",
		"-af", "highpass=f=1300,highpass=f=1300,silencedetect=noise=-35dB:d=0.01", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg beeps: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`start: (-?[0-9]+\.[0-9]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("ffmpeg did not print the input's start:\n%s", out)
	}
	start, _ := strconv.ParseFloat(string(m[1]), 64)
	for i := range keys {
		keys[i] -= start
	}
	// A beep ends a silence of 0.96 s (the input's first and last end
	// shorter ones, as may the faint seam of two encodings).
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
