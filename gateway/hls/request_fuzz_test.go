package hls

import (
	"net/url"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzRequest feeds untrusted file names and queries to the parsers: they
// never panic, accept only what they document, and the query handed to the
// muxer never carries the token or anything but the session and LL-HLS
// parameters.
func FuzzRequest(f *testing.F) {
	sid := strings.Repeat("ab", 16)
	for _, seed := range [][2]string{
		{"index.m3u8", "token=abc.def.ghi"},
		{"video1_stream.m3u8", "session=" + sid + "&_HLS_msn=12&_HLS_part=3&_HLS_skip=YES"},
		{"0a1b2c3d4e5f_video1_seg12.mp4", "session=" + sid},
		{"0a1b2c3d4e5f_audio2_part7.mp4", "session=" + sid + "&token=x"},
		{"0a1b2c3d4e5f_video1_init.mp4", "session=%zz"},
		{"gap.mp4", "_HLS_part=1"},
		{"../../etc/passwd", "session=" + sid + "&session=" + sid},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, file, rawQuery string) {
		if kind, err := classifyFile(file); err == nil {
			if kind < kindIndex || kind > kindPart {
				t.Fatalf("%q: kind %d", file, kind)
			}
			if strings.ContainsAny(file, "/\\%?#") || strings.Contains(file, "..") {
				t.Fatalf("%q accepted", file)
			}
		}
		var args fasthttp.Args
		args.Parse(rawQuery)
		q, err := parseQuery(&args)
		if err != nil {
			return
		}
		if q.session != nil && !validSessionID(q.session) {
			t.Fatalf("%q: session %q accepted", rawQuery, q.session)
		}
		for _, kind := range []fileKind{kindIndex, kindPlaylist, kindSegment} {
			mq := q.muxerQuery(sid, kind)
			vals, err := url.ParseQuery(mq)
			if err != nil {
				t.Fatalf("muxer query %q: %v", mq, err)
			}
			for k, v := range vals {
				switch {
				case k == "session" && len(v) == 1 && v[0] == sid:
				case kind == kindPlaylist && strings.HasPrefix(k, "_HLS_") && len(v) == 1:
				default:
					t.Fatalf("muxer query %q for %q carries %s=%v", mq, rawQuery, k, v)
				}
			}
		}
	})
}
