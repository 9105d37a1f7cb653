package mp4

import (
	"encoding/binary"
)

// stbl writes a sample table: the recording's stsd, then stts, stss, ctts,
// stsc, stsz and stco/co64 built from the download's samples. Counts are
// patched after the entries so every table is one pass.
func (h *headerWriter) stbl(t *outTrack, stbl Box) error {
	h.start("stbl")
	found := false
	err := children(h.src, stbl, 0, func(c Box) error {
		if c.Type == "stsd" {
			h.b = append(h.b, h.src[c.Off:c.End()]...)
			found = true
		}
		return nil // the recording's own tables are empty: fragments carry the samples
	})
	if err != nil {
		return err
	}
	if !found {
		return errBadInit
	}
	h.stts(t.samples)
	h.stss(t.samples)
	h.ctts(t.samples)
	h.stsc(t.samples)
	h.stsz(t.samples)
	h.chunkOffsets(t.chunks)
	h.end()
	return nil
}

// count reserves an entry count and returns a function that patches it.
func (h *headerWriter) count() func(uint32) {
	at := len(h.b)
	h.u32(0)
	return func(n uint32) { binary.BigEndian.PutUint32(h.b[at:], n) }
}

func (h *headerWriter) stts(samples []outSample) {
	h.fullBox("stts", 0, 0)
	done, n := h.count(), uint32(0)
	for i := 0; i < len(samples); {
		j := i + 1
		for j < len(samples) && samples[j].dur == samples[i].dur {
			j++
		}
		h.u32(uint32(j - i))
		h.u32(samples[i].dur)
		n++
		i = j
	}
	done(n)
	h.end()
}

// stss is left out when every sample is a sync sample (audio), as the
// format allows.
func (h *headerWriter) stss(samples []outSample) {
	all := true
	for _, s := range samples {
		all = all && s.sync
	}
	if all {
		return
	}
	h.fullBox("stss", 0, 0)
	done, n := h.count(), uint32(0)
	for i, s := range samples {
		if s.sync {
			h.u32(uint32(i + 1))
			n++
		}
	}
	done(n)
	h.end()
}

// ctts is left out when no sample has a composition offset; version 1
// (signed offsets) only when one is negative.
func (h *headerWriter) ctts(samples []outSample) {
	has, neg := false, false
	for _, s := range samples {
		has = has || s.cts != 0
		neg = neg || s.cts < 0
	}
	if !has {
		return
	}
	version := byte(0)
	if neg {
		version = 1
	}
	h.fullBox("ctts", version, 0)
	done, n := h.count(), uint32(0)
	for i := 0; i < len(samples); {
		j := i + 1
		for j < len(samples) && samples[j].cts == samples[i].cts {
			j++
		}
		h.u32(uint32(j - i))
		h.u32(uint32(samples[i].cts))
		n++
		i = j
	}
	done(n)
	h.end()
}

// stsc has an entry wherever the number of samples per chunk changes.
func (h *headerWriter) stsc(samples []outSample) {
	h.fullBox("stsc", 0, 0)
	done, n := h.count(), uint32(0)
	chunk, last := uint32(0), uint32(0)
	for i := 0; i < len(samples); {
		j := i + 1
		for j < len(samples) && !samples[j].first {
			j++
		}
		chunk++
		if per := uint32(j - i); per != last {
			h.u32(chunk)
			h.u32(per)
			h.u32(1) // sample description index
			n++
			last = per
		}
		i = j
	}
	done(n)
	h.end()
}

func (h *headerWriter) stsz(samples []outSample) {
	h.fullBox("stsz", 0, 0)
	same := len(samples) > 0
	for _, s := range samples {
		same = same && s.size == samples[0].size
	}
	if same {
		h.u32(samples[0].size)
		h.u32(uint32(len(samples)))
	} else {
		h.u32(0)
		h.u32(uint32(len(samples)))
		for _, s := range samples {
			h.u32(s.size)
		}
	}
	h.end()
}

// chunkOffsets writes the offsets relative to the mdat payload; buildHeader
// rebases them once the header's length is known.
func (h *headerWriter) chunkOffsets(chunks []int64) {
	typ, width := "stco", 4
	if h.large {
		typ, width = "co64", 8
	}
	h.fullBox(typ, 0, 0)
	h.u32(uint32(len(chunks)))
	h.cos = append(h.cos, coRef{pos: len(h.b), chunks: chunks})
	h.b = append(h.b, make([]byte, width*len(chunks))...)
	h.end()
}
