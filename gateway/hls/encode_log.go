package hls

import (
	"log/slog"
	"strings"
)

// What gohlslib (v2.4) reports through OnEncodeError that is not an error:
// plain fmt.Errorf messages, no error values of their own.
const (
	// The LL-HLS part target duration is recomputed at every part from the
	// longest part listed, rounded up to the millisecond, so a millisecond of
	// timestamp jitter changes it ("part duration changed from 200ms to
	// 201ms"). The muxer goes on and players keep playing.
	partTargetChangedPrefix = "part duration changed from "
	// A segment longer than any before (a longer GOP, a gap in the stream)
	// made EXT-X-TARGETDURATION grow ("segment duration changed from 1s to
	// 2s"); gohlslib warns that iOS clients fail on it, so it stays a warning.
	segmentTargetChangedPrefix = "segment duration changed from "
)

// encodeLog logs what one gohlslib Muxer reports through OnEncodeError: real
// encode errors (a sample that could not be muxed) at warn, the first only,
// as they tend to repeat for every sample; target duration changes as what
// they are. It is called on the muxer's feeding goroutine only (gohlslib
// calls it from the Write* calls the feeder makes), which owns the counts.
type encodeLog struct {
	log               *slog.Logger
	errors            int
	partTargetChanges int
}

func (l *encodeLog) report(err error) {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, partTargetChangedPrefix):
		l.partTargetChanges++
		l.log.Debug("hls part target duration changed", "detail", msg)
	case strings.HasPrefix(msg, segmentTargetChangedPrefix):
		l.log.Warn("hls segment target duration grew (a longer GOP or a gap in the stream)", "detail", msg)
	default:
		l.errors++
		if l.errors == 1 {
			l.log.Warn("hls muxer encode error", "error", err)
		}
	}
}
