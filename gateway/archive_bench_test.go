package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/config"
	"github.com/camgate/camgate/links"
)

// A real 1920x1080 baseline SPS/PPS: the archive's init writer parses the SPS.
var (
	footageSPS = []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20}
	footagePPS = []byte{0x08, 0x06, 0x07, 0x08}
)

// startArchiveNode runs a gateway whose archive cuts 2 s segments and
// records nothing by itself: tests write the footage they need.
func startArchiveNode(t testing.TB) *node {
	t.Helper()
	return startNodeWith(t, t.TempDir(), func(c *config.Config) {
		c.Archive.SegmentDuration = config.Duration(2 * time.Second)
	})
}

// recordFootage writes d of synthetic 25 fps H264 (a keyframe a second,
// frames of 1000 bytes) and 20 ms Opus frames of camera into the node's
// archive, recorded from wall time start: 2 s segments, so d/2s of them.
func recordFootage(t testing.TB, n *node, camera string, start time.Time, d time.Duration) []archive.Segment {
	t.Helper()
	w, err := n.g.archive.NewWriter(camera, []archive.Track{
		{Codec: &codecs.H264{SPS: footageSPS, PPS: footagePPS}, ClockRate: 90000},
		{Codec: &codecs.Opus{ChannelCount: 2}, ClockRate: 48000},
	})
	if err != nil {
		t.Fatal(err)
	}
	frame, audio := make([]byte, 1000), make([]byte, 120)
	for vi, ai := 0, 0; ; {
		vt := time.Duration(vi) * 40 * time.Millisecond
		at := time.Duration(ai) * 20 * time.Millisecond
		if vt >= d && at >= d {
			break
		}
		if vt <= at {
			key := vi%25 == 0
			frame[4] = 0x41
			if key {
				frame[4] = 0x65
			}
			n := len(frame) - 4
			frame[0], frame[1], frame[2], frame[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
			err = w.WriteSample(0, archive.Sample{DTS: int64(vi) * 3600, Sync: key, Payload: frame, NTP: start.Add(vt)})
			vi++
		} else {
			err = w.WriteSample(1, archive.Sample{DTS: int64(ai) * 960, Sync: true, Payload: audio, NTP: start.Add(at)})
			ai++
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return n.g.archive.Segments(camera, start, start.Add(d))
}

// archiveBenchTokens are a viewer token with archive+download+sound on cam1
// and a share link to cam1 with archive+download.
func archiveBenchTokens(b *testing.B, n *node) map[string]string {
	b.Helper()
	root := authz.Caller{Root: true}
	mustHandle(b, n, root, "PUT", []string{"subjects", "alice"}, `{"kind":"user"}`)
	mustHandle(b, n, root, "PUT", []string{"grants", "a"}, `{"subject":"alice","device":"cam1","actions":["archive","download","sound"]}`)
	notAfter := time.Now().Add(time.Hour)
	link, err := n.g.links.Create(links.Creator{Root: true}, links.CreateRequest{Device: "cam1", Actions: []string{"archive", "download"}, NotAfter: &notAfter})
	if err != nil {
		b.Fatal(err)
	}
	return map[string]string{"viewer": viewerToken(b, "alice"), "link": link.Token}
}

// BenchmarkArchiveDownloadPrepare is one download request of N segments up
// to its first byte (authorization of the range and of every segment, the
// sample tables read, the MP4 header built), with a viewer token and with
// a share-link token; the body is not sent.
func BenchmarkArchiveDownloadPrepare(b *testing.B) {
	n := startArchiveNode(b)
	toks := archiveBenchTokens(b, n)
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	recorded := recordFootage(b, n, "cam1", start, time.Minute)
	for _, segs := range []int{6, 30} {
		if len(recorded) < segs {
			b.Fatalf("%d segments recorded, want %d", len(recorded), segs)
		}
		end := recorded[segs-1].End()
		for _, kind := range []string{"viewer", "link"} {
			b.Run(fmt.Sprintf("token=%s/segments=%d", kind, segs), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					d, err := n.g.archive.PrepareDownload(context.Background(), toks[kind], "cam1", start, end)
					if err != nil {
						b.Fatal(err)
					}
					d.Close()
				}
			})
		}
	}
}

// BenchmarkArchivePlaylist is one playback playlist of N segments: little
// but authorization (every segment is checked) and text.
func BenchmarkArchivePlaylist(b *testing.B) {
	n := startArchiveNode(b)
	toks := archiveBenchTokens(b, n)
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	recorded := recordFootage(b, n, "cam1", start, time.Minute)
	end, segs := recorded[len(recorded)-1].End(), len(recorded)
	for _, kind := range []string{"viewer", "link"} {
		b.Run(fmt.Sprintf("token=%s/segments=%d", kind, segs), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := n.g.archive.Playlist(context.Background(), toks[kind], "cam1", start, end); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
