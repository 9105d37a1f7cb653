package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
)

// A camera that sends its H264 parameter sets only in the SDP (ffmpeg
// publishing does; so do many cameras) is recorded: the recorder used to
// wait forever for an in-band SPS and wrote nothing, without an error.
func TestRecordsACameraWithParametersOnlyInTheSDP(t *testing.T) {
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, mediatest.Clip{Name: "h264", Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p"}, Ext: "mkv"})
	dir := t.TempDir()
	n := startNodeWith(t, dir, func(c *config.Config) {
		c.Cameras = []config.Camera{{ID: "cam1", Site: "hq", Source: up.URL(), Record: true}}
		c.Archive.SegmentDuration = config.Duration(time.Second)
	})
	poll.Until(t, "segments of cam1", func() bool { return segments(dir) >= 2 })
	if segs := n.g.archive.Segments("cam1", time.Now().Add(-time.Minute), time.Now().Add(time.Minute)); len(segs) == 0 {
		t.Fatal("the archive index has no segment of cam1")
	}
	var first string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && first == "" && strings.HasSuffix(p, ".mp4") {
			first = p
		}
		return nil
	})
	codecs, stderr, err := mediatest.Probe(t, first)
	if err != nil || len(codecs) != 1 || codecs[0] != "h264" {
		t.Fatalf("ffprobe of the first segment: %v %v %s", codecs, err, stderr)
	}
}
