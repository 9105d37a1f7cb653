package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// box appends a box of type typ around payload.
func box(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func u32s(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// testMoof is a moof with one traf of track 1: tfdt 9000, a trun of two
// samples (durations and sizes per sample) whose data starts 8 bytes past
// the moof (behind the mdat header).
func testMoof() []byte {
	traf := func(moofSize uint32) []byte {
		return box("traf",
			box("tfhd", u32s(0x020000, 1)), // default-base-is-moof
			box("tfdt", u32s(0, 9000)),
			box("trun", u32s(0x000301, 2, moofSize+8, 3600, 10, 3600, 20)))
	}
	n := uint32(len(box("moof", box("mfhd", u32s(0, 1)), traf(0))))
	return box("moof", box("mfhd", u32s(0, 1)), traf(n))
}

func TestAddMoof(t *testing.T) {
	moof := testMoof()
	file := append(append([]byte{}, moof...), box("mdat", make([]byte, 30))...)
	fr := Fragments{FileSize: int64(len(file))}
	if err := fr.AddMoof(moof, 0); err != nil {
		t.Fatal(err)
	}
	if len(fr.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(fr.Runs))
	}
	r := fr.Runs[0]
	want := Run{TrackID: 1, Base: 9000, DataOffset: int64(len(moof)) + 8, Entries: []Entry{{Dur: 3600, Size: 10}, {Dur: 3600, Size: 20}}}
	if r.TrackID != want.TrackID || r.Base != want.Base || r.DataOffset != want.DataOffset || len(r.Entries) != 2 || r.Entries[0] != want.Entries[0] || r.Entries[1] != want.Entries[1] {
		t.Fatalf("run %+v, want %+v", r, want)
	}
	// The same samples do not fit a file that ends before them.
	fr = Fragments{FileSize: int64(len(moof)) + 20}
	if err := fr.AddMoof(moof, 0); !errors.Is(err, ErrBadTraf) {
		t.Fatalf("samples past the end of the file: %v, want ErrBadTraf", err)
	}
}

func TestBoxHeaders(t *testing.T) {
	large := append(u32s(1), "mdat"...)
	large = binary.BigEndian.AppendUint64(large, 24)
	large = append(large, make([]byte, 8)...)
	for _, tc := range []struct {
		name string
		b    []byte
		want Box
		err  error
	}{
		{name: "plain", b: box("free", make([]byte, 4)), want: Box{Type: "free", Size: 12}},
		{name: "64-bit size", b: large, want: Box{Type: "mdat", Size: 24}},
		{name: "to the end of the file", b: append(u32s(0), "mdat"...), err: ErrPartial},
		{name: "past the end", b: box("free", make([]byte, 4))[:10], err: ErrPartial},
		{name: "smaller than its header", b: append(u32s(7), "free"...), err: ErrPartial},
		{name: "truncated header", b: []byte{0, 0, 0}, err: ErrPartial},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := At(tc.b, 0)
			if !errors.Is(err, tc.err) || (err == nil && got != tc.want) {
				t.Fatalf("At: %+v, %v; want %+v, %v", got, err, tc.want, tc.err)
			}
			got, err = ReadAt(bytes.NewReader(tc.b), 0, int64(len(tc.b)))
			if !errors.Is(err, tc.err) || (err == nil && got != tc.want) {
				t.Fatalf("ReadAt: %+v, %v; want %+v, %v", got, err, tc.want, tc.err)
			}
			var w Window
			w.Reset(bytes.NewReader(tc.b), int64(len(tc.b)))
			got, err = w.Box(0)
			if !errors.Is(err, tc.err) || (err == nil && got != tc.want) {
				t.Fatalf("Window.Box: %+v, %v; want %+v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// FuzzAddMoof: the moof parser on untrusted bytes never panics, never
// returns a run outside the file and never holds more samples than the
// file has bytes.
func FuzzAddMoof(f *testing.F) {
	f.Add(testMoof(), int64(1<<16))
	f.Add(box("moof", box("traf", box("trun", u32s(0x000001, 1<<20, 0)))), int64(100))
	f.Fuzz(func(t *testing.T, moof []byte, fileSize int64) {
		fr := Fragments{FileSize: max(fileSize, int64(len(moof)))}
		if err := fr.AddMoof(moof, 0); err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if int64(len(fr.Entries)) > fr.FileSize {
			t.Fatalf("%d samples in a %d-byte file", len(fr.Entries), fr.FileSize)
		}
		for _, r := range fr.Runs {
			end := r.DataOffset
			for _, e := range r.Entries {
				end += int64(e.Size)
			}
			if r.DataOffset < 0 || end > fr.FileSize {
				t.Fatalf("track %d: samples at [%d, %d) of a %d-byte file", r.TrackID, r.DataOffset, end, fr.FileSize)
			}
		}
	})
}
