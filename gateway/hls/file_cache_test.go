package hls

import (
	"strconv"
	"testing"

	"github.com/bluenviron/gohlslib/v2"
)

func TestFileCache(t *testing.T) {
	var c fileCache
	m1, m2 := &gohlslib.Muxer{}, &gohlslib.Muxer{}
	body := []byte("segment")
	c.put(m1, "a_video1_seg1.mp4", body, "video/mp4")
	body[0] = 'X' // the cache holds its own copy
	if f := c.get(m1, "a_video1_seg1.mp4"); f == nil || string(f.body) != "segment" || f.contentType != "video/mp4" {
		t.Fatalf("get: %+v", f)
	}
	if c.get(m2, "a_video1_seg1.mp4") != nil {
		t.Fatal("a file of another muxer was served")
	}
	for i := range fileCacheSize {
		c.put(m1, "a_video1_part"+strconv.Itoa(i)+".mp4", []byte{byte(i)}, "video/mp4")
	}
	if c.get(m1, "a_video1_seg1.mp4") != nil {
		t.Fatal("the oldest file was not evicted")
	}
	if c.get(m1, "a_video1_part0.mp4") == nil || c.get(m1, "a_video1_part31.mp4") == nil {
		t.Fatal("a recent file was evicted")
	}
	c.put(m2, "b_video1_seg1.mp4", body, "video/mp4")
	if c.get(m1, "a_video1_part31.mp4") != nil || c.get(m2, "b_video1_seg1.mp4") == nil {
		t.Fatal("a new muxer did not replace the old one's files")
	}
}
