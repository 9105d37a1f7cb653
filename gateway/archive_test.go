package gateway

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/internal/poll"
)

// TestRecordPlayDownload records the demo camera through the gateway, plays
// the archive with ffprobe and checks who may download.
func TestRecordPlayDownload(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) {
		c.Archive.SegmentDuration = config.Duration(time.Second)
		c.Cameras[0].Record = true
	})
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/a", `{"subject":"alice","device":"cam1","actions":["archive","download"]}`, 200)
	mustCall(t, n, "PUT", "/grants/b", `{"subject":"bob","device":"cam1","actions":["archive"]}`, 200)
	start := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	base := "http://" + n.g.HTTPAddr().String() + "/archive/cam1/"

	// Wait until a few segments are indexed.
	poll.Within(t, 30*time.Second, "3 segments indexed", func() bool { return len(n.g.archive.Segments("cam1", time.Time{}, time.Now().Add(time.Hour))) >= 3 })
	end := time.Now().UTC().Add(time.Minute).Format(time.RFC3339)
	q := "?start=" + start + "&end=" + end + "&token="

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
		base+"index.m3u8"+q+viewerToken(t, "bob")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "h264") {
		t.Fatalf("ffprobe of the archive playlist: %v: %s", err, out)
	}
	get := func(url string) int {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := get(base + "download" + q + viewerToken(t, "bob")); code != 403 {
		t.Fatalf("bob (archive, no download) downloading: %d", code)
	}
	if code := get(base + "download" + q + viewerToken(t, "alice")); code != 200 {
		t.Fatalf("alice downloading: %d", code)
	}
	if code := get(base + "index.m3u8" + q + viewerToken(t, "carol")); code != 403 {
		t.Fatalf("carol without archive: %d", code)
	}
	if code := get(base + "index.m3u8" + q + "garbage"); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
}
