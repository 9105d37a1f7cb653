// Package mp4 holds the archive's hand-written ISO BMFF code: one box
// walker (headers, a windowed reader for files) and one moof parser, shared
// by indexing, partial-tail recovery and the progressive download. It reads
// untrusted bytes, so every length is bounded by the data it came from.
package mp4
