package mp4

import (
	"encoding/binary"
	"errors"
	"io"
)

// ErrPartial marks a box that extends past the end of the data.
var ErrPartial = errors.New("partial box")

// Box is a box header: its four-character type, its offset and its size
// (header included).
type Box struct {
	Type      string
	Off, Size int64
}

// End is the offset just past the box.
func (b Box) End() int64 { return b.Off + b.Size }

func parseHeader(h []byte, off, limit int64) (Box, error) {
	size := int64(binary.BigEndian.Uint32(h[0:4]))
	bx := Box{Type: string(h[4:8]), Off: off, Size: size}
	switch size {
	case 0: // "to the end of the file": only a writer that crashed leaves it
		return bx, ErrPartial
	case 1:
		if len(h) < 16 {
			return bx, ErrPartial
		}
		bx.Size = int64(binary.BigEndian.Uint64(h[8:16]))
	}
	if bx.Size < 8 || bx.Size > limit-off {
		return bx, ErrPartial
	}
	return bx, nil
}

// At reads the box header at off in b; the box must end within b.
func At(b []byte, off int64) (Box, error) {
	if off < 0 || off+8 > int64(len(b)) {
		return Box{}, ErrPartial
	}
	return parseHeader(b[off:min(off+16, int64(len(b)))], off, int64(len(b)))
}

// ReadAt reads the box header at off in a file of the given size.
func ReadAt(r io.ReaderAt, off, size int64) (Box, error) {
	var h [16]byte
	n := min(int64(16), size-off)
	if n < 8 {
		return Box{}, ErrPartial
	}
	if _, err := r.ReadAt(h[:n], off); err != nil {
		return Box{}, err
	}
	return parseHeader(h[:n], off, size)
}

// windowSize is how much of a file a Window reads at once: a moof and the
// header of the mdat behind it usually come in one read, so a fragment
// costs one pread however large its mdat.
const windowSize = 4 << 10

// Window reads a file's boxes through one reusable buffer. Reset points it
// at another file and keeps the buffer.
type Window struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	off  int64 // file offset of buf[0]
}

// Reset points w at the file r of the given size.
func (w *Window) Reset(r io.ReaderAt, size int64) {
	w.r, w.size, w.off = r, size, 0
	w.buf = w.buf[:0]
}

// Size is the size of the file w reads.
func (w *Window) Size() int64 { return w.size }

// Bytes returns n bytes at off, valid until the next call.
func (w *Window) Bytes(off, n int64) ([]byte, error) {
	if off >= w.off && off+n <= w.off+int64(len(w.buf)) {
		return w.buf[off-w.off : off-w.off+n], nil
	}
	want := min(max(n, windowSize), w.size-off)
	if want < n {
		return nil, ErrPartial
	}
	if int64(cap(w.buf)) < want {
		w.buf = make([]byte, want)
	}
	w.buf = w.buf[:want]
	m, err := w.r.ReadAt(w.buf, off)
	if int64(m) < n {
		w.buf = w.buf[:0]
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	w.buf, w.off = w.buf[:m], off
	return w.buf[:n], nil
}

// Box reads the box header at off.
func (w *Window) Box(off int64) (Box, error) {
	h, err := w.Bytes(off, min(16, w.size-off))
	if err != nil || len(h) < 8 {
		return Box{}, ErrPartial
	}
	return parseHeader(h, off, w.size)
}
