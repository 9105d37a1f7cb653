// Package mp4 holds the archive's hand-written ISO BMFF code: one box
// walker (headers, a windowed reader for files) and one moof parser, shared
// by indexing, partial-tail recovery, HLS segment serving and the download;
// and the progressive muxer (Muxer) that turns consecutive fragmented
// segments into one MP4 with 64-bit chunk offsets and edit lists, written
// by hand because mediacommon's pmp4 has 32-bit offsets only and an
// edit-list bug (see moov.go). It reads untrusted bytes, so every length
// is bounded by the data it came from. It imports nothing of the archive.
package mp4
