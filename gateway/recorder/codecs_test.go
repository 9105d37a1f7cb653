package recorder

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
)

// The table decode gives mediacommon's samples, for both laws.
func TestG711TableMatchesMediacommon(t *testing.T) {
	in := make([]byte, 1000)
	for i := range in {
		in[i] = byte(i*37 + i/256)
	}
	var a g711.Alaw
	a.Unmarshal(in)
	var m g711.Mulaw
	m.Unmarshal(in)
	for _, tc := range []struct {
		name  string
		mulaw bool
		want  []byte
	}{{"alaw", false, a}, {"mulaw", true, m}} {
		buf := make([]byte, 10) // too short: grown
		if got := newG711Table(tc.mulaw).decode(buf, in); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: the table decode differs from mediacommon's", tc.name)
		}
	}
}

func BenchmarkG711Decode(b *testing.B) {
	tab, in := newG711Table(false), make([]byte, 160)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = tab.decode(buf, in)
	}
}

func TestJPEGSize(t *testing.T) {
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, image.NewGray(image.Rect(0, 0, 320, 240)), nil); err != nil {
		t.Fatal(err)
	}
	good := enc.Bytes()
	for _, tc := range []struct {
		name string
		b    []byte
		w, h int
		ok   bool
	}{
		{"encoded", good, 320, 240, true},
		{"empty", nil, 0, 0, false},
		{"not a JPEG", []byte("\x89PNG\r\n\x1a\n...."), 0, 0, false},
		{"cut in its frame header", good[:bytes.Index(good, []byte{0xFF, 0xC0})+6], 0, 0, false},
		{"zero length marker", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0}, 0, 0, false},
		{"scan before frame", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 8, 0, 0, 0, 0, 0, 0}, 0, 0, false},
		{"zero size", []byte{0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 0, 0, 0, 1, 1, 0x11, 0}, 0, 0, false},
	} {
		w, h, ok := jpegSize(tc.b)
		if w != tc.w || h != tc.h || ok != tc.ok {
			t.Errorf("%s: %d×%d %v, want %d×%d %v", tc.name, w, h, ok, tc.w, tc.h, tc.ok)
		}
	}
}

// FuzzJPEGSize: frames come from cameras; any bytes give an answer, never
// a panic, and a size only with a frame header inside the bytes.
func FuzzJPEGSize(f *testing.F) {
	var enc bytes.Buffer
	_ = jpeg.Encode(&enc, image.NewGray(image.Rect(0, 0, 16, 8)), nil)
	f.Add(enc.Bytes())
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 8, 0, 16})
	f.Fuzz(func(t *testing.T, b []byte) {
		if w, h, ok := jpegSize(b); ok && (w <= 0 || h <= 0 || !bytes.Contains(b, []byte{0xFF})) {
			t.Fatalf("%d×%d from %x", w, h, b)
		}
	})
}
