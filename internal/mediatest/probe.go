// Package mediatest runs real media tools for end-to-end tests: ffprobe
// reads what camgate serves, exactly as a user's player would.
package mediatest

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// Probe runs ffprobe on url (extra arguments go before it, e.g.
// "-rtsp_transport", "tcp") and returns the sorted codec names of its
// streams, each once (HLS lists a stream per program), or ffprobe's error
// output and exit error. The test fails at once when ffprobe is missing.
func Probe(t testing.TB, url string, extra ...string) (codecs []string, stderr string, err error) {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe is required: apt-get install -y ffmpeg (or run scripts/test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	args := append([]string{"-v", "error"}, extra...)
	args = append(args, "-show_entries", "stream=codec_name", "-of", "json", url)
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, errb.String(), err
	}
	var res struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("ffprobe output: %v: %s", err, out.String())
	}
	for _, s := range res.Streams {
		codecs = append(codecs, s.CodecName)
	}
	slices.Sort(codecs)
	return slices.Compact(codecs), errb.String(), nil
}
