package archive

import (
	"encoding/binary"
	"io"
	"sync"
)

// partChunk is the unit of a track's part buffer. A part is kept as a list
// of chunks rather than one growing slice: no copy when it grows, no
// capacity kept at twice the largest part, and the chunks a camera's part
// frees serve the next camera's part (Store.chunks).
const partChunk = 32 << 10

// partData is the payload bytes of one track's current part and pending
// sample: chunks[0][off:] onwards, size bytes in all.
type partData struct {
	chunks []*[partChunk]byte
	off    int // start in chunks[0]
	size   int
}

func (d *partData) append(pool *sync.Pool, b []byte) {
	for len(b) > 0 {
		end := (d.off + d.size) % partChunk
		if end == 0 && d.off+d.size == len(d.chunks)*partChunk {
			c, _ := pool.Get().(*[partChunk]byte)
			if c == nil {
				c = new([partChunk]byte)
			}
			d.chunks = append(d.chunks, c)
		}
		n := copy(d.chunks[len(d.chunks)-1][end:], b)
		d.size += n
		b = b[n:]
	}
}

// writeTo writes the first n bytes.
func (d *partData) writeTo(w io.Writer, n int) (int64, error) {
	var total int64
	at := d.off
	for _, c := range d.chunks {
		if n == 0 {
			break
		}
		k := min(partChunk-at, n)
		m, err := w.Write(c[at : at+k])
		total += int64(m)
		if err != nil {
			return total, err
		}
		n -= k
		at = 0
	}
	return total, nil
}

// appendBuffers appends the first n bytes to bufs as slices of the chunks.
func (d *partData) appendBuffers(bufs [][]byte, n int) [][]byte {
	at := d.off
	for _, c := range d.chunks {
		if n == 0 {
			break
		}
		k := min(partChunk-at, n)
		bufs = append(bufs, c[at:at+k])
		n -= k
		at = 0
	}
	return bufs
}

// drop forgets the first n bytes, returning the chunks they filled.
func (d *partData) drop(pool *sync.Pool, n int) {
	d.off += n
	d.size -= n
	k := d.off / partChunk
	if d.size == 0 {
		k = len(d.chunks) // nothing left: every chunk goes back
	}
	for i := range k {
		pool.Put(d.chunks[i])
		d.chunks[i] = nil
	}
	d.chunks = append(d.chunks[:0], d.chunks[k:]...)
	d.off -= k * partChunk
	if d.size == 0 {
		d.off = 0
	}
}

// bytes returns a copy of the first n bytes (tests).
func (d *partData) bytes(n int) []byte {
	var b sliceWriter
	_, _ = d.writeTo(&b, n)
	return b
}

type sliceWriter []byte

func (s *sliceWriter) Write(p []byte) (int, error) {
	*s = append(*s, p...)
	return len(p), nil
}

// partSample is one sample of the part being gathered; its payload is in
// its track's data.
type partSample struct {
	duration  uint32
	size      uint32
	ptsOffset int32
	nonSync   bool
}

// trun flags and the sample flag, as mediacommon's fmp4.Part writes them.
const (
	trunDataOffset   = 0x01
	trunDuration     = 0x100
	trunSize         = 0x200
	trunFlags        = 0x400
	trunCTSOffset    = 0x800
	sampleNonSync    = 1 << 16
	tfhdDefaultBase  = 0x020000 // default-base-is-moof
	fullBoxVersion1  = 1 << 24
	boxHeaderSize    = 8
	mfhdSize         = 16
	tfhdSize         = 16
	tfdtSize         = 20
	trunFixedSize    = 20 // header, version and flags, sample count, data offset
	trunEntryMaxSize = 16
)

// appendPartHeader appends the moof of one part and its mdat header to b:
// the same bytes as mediacommon's fmp4.Part.Marshal (moof{mfhd,
// traf{tfhd, tfdt v1, trun v1}…}, mdat) but written directly, without a
// per-field reflection walk and without copying the payloads: the caller
// writes each track's payloads (data[:partBytes]) after it, in track order.
// Tracks without samples in this part are left out.
func appendPartHeader(b []byte, seq uint32, tracks []*writerTrack) []byte {
	moofStart := len(b)
	b = appendBoxHeader(b, 0, "moof")
	b = appendBoxHeader(b, mfhdSize, "mfhd")
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, seq)
	type fixup struct{ at, dataOff int }
	var fixups [8]fixup
	fix := fixups[:0]
	dataOff := 0
	for _, t := range tracks {
		if len(t.samples) == 0 {
			continue
		}
		flags := uint32(trunDataOffset | trunDuration | trunSize)
		for _, s := range t.samples {
			if s.nonSync {
				flags |= trunFlags
			}
			if s.ptsOffset != 0 {
				flags |= trunCTSOffset
			}
		}
		entry := 8
		if flags&trunFlags != 0 {
			entry += 4
		}
		if flags&trunCTSOffset != 0 {
			entry += 4
		}
		trunSz := trunFixedSize + entry*len(t.samples)
		b = appendBoxHeader(b, uint32(boxHeaderSize+tfhdSize+tfdtSize+trunSz), "traf")
		b = appendBoxHeader(b, tfhdSize, "tfhd")
		b = binary.BigEndian.AppendUint32(b, tfhdDefaultBase)
		b = binary.BigEndian.AppendUint32(b, uint32(t.init.ID))
		b = appendBoxHeader(b, tfdtSize, "tfdt")
		b = binary.BigEndian.AppendUint32(b, fullBoxVersion1)
		b = binary.BigEndian.AppendUint64(b, t.baseTime)
		b = appendBoxHeader(b, uint32(trunSz), "trun")
		b = binary.BigEndian.AppendUint32(b, fullBoxVersion1|flags)
		b = binary.BigEndian.AppendUint32(b, uint32(len(t.samples)))
		fix = append(fix, fixup{at: len(b), dataOff: dataOff})
		b = binary.BigEndian.AppendUint32(b, 0) // data offset, set below
		for _, s := range t.samples {
			b = binary.BigEndian.AppendUint32(b, s.duration)
			b = binary.BigEndian.AppendUint32(b, s.size)
			if flags&trunFlags != 0 {
				var f uint32
				if s.nonSync {
					f = sampleNonSync
				}
				b = binary.BigEndian.AppendUint32(b, f)
			}
			if flags&trunCTSOffset != 0 {
				b = binary.BigEndian.AppendUint32(b, uint32(s.ptsOffset))
			}
		}
		dataOff += t.partBytes
	}
	moofSize := len(b) - moofStart
	binary.BigEndian.PutUint32(b[moofStart:], uint32(moofSize))
	for _, f := range fix {
		// From the start of the moof to the sample data inside the mdat.
		binary.BigEndian.PutUint32(b[f.at:], uint32(moofSize+boxHeaderSize+f.dataOff))
	}
	return appendBoxHeader(b, uint32(boxHeaderSize+dataOff), "mdat")
}

func appendBoxHeader(b []byte, size uint32, typ string) []byte {
	b = binary.BigEndian.AppendUint32(b, size)
	return append(b, typ...)
}
