// Package archive records cameras as fMP4 segments and serves what was
// recorded: HLS VOD playback, single-file MP4 download and stored media
// objects (motion-cam photos, voice-module audio clips).
//
// Layout on disk, compatible with mediamtx's default recording layout so an
// existing mediamtx recordings folder can be indexed (read-only) too:
//
//	DATA/archive/{camera}/2026-11-22_10-00-00-000000.mp4   one segment (UTC start time)
//	DATA/archive/{device}/objects/{id}.bin + {id}.json      one media object
//
// The folder is the index: it is rescanned at start-up, and a segment whose
// tail is partial (a crash while recording) is cut back to its last complete
// fragment, or ignored when nothing complete is left, so it is never served
// corrupt. Retention deletes segments by age and by a disk budget.
//
// Authorization belongs to the caller (the gateway): every playlist entry,
// segment, download and object request is checked through the Authorizer
// with the footage's own recording time, so footage windows hold per segment.
// This package imports nothing of gateway/.
package archive
