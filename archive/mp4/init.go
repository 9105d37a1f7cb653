package mp4

import (
	"hash/fnv"
	"time"
)

// MaxInitSize bounds the ftyp+moov read into memory.
const MaxInitSize = 1 << 20

// TracksFingerprint hashes the trak boxes of an init: two segments with the
// same fingerprint can be played with one init section.
func TracksFingerprint(b []byte) uint64 {
	h := fnv.New64a()
	ftyp, err := At(b, 0)
	if err != nil {
		return 0
	}
	moov, err := At(b, ftyp.End())
	if err != nil {
		return 0
	}
	for off := moov.Off + 8; off < moov.End(); {
		c, err := At(b[:moov.End()], off)
		if err != nil {
			break
		}
		if c.Type == "trak" {
			h.Write(b[c.Off:c.End()])
		}
		off = c.End()
	}
	return h.Sum64()
}

// ToTicks is d in units of 1/rate s (a track's time scale), rounded down.
func ToTicks(d time.Duration, rate uint32) int64 {
	r := int64(rate)
	return int64(d/time.Second)*r + int64(d%time.Second)*r/int64(time.Second)
}

// FromTicks is v units of 1/rate s as a duration, without overflowing
// for long recordings.
func FromTicks(v int64, rate uint32) time.Duration {
	r := int64(rate)
	return time.Duration(v/r)*time.Second + time.Duration(v%r)*time.Second/time.Duration(r)
}
