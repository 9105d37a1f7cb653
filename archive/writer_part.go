package archive

import "encoding/binary"

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
