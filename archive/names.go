package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// segmentLayout is mediamtx's default "%Y-%m-%d_%H-%M-%S-%f" (microseconds
// after the last dash); our own segments are named in UTC.
const (
	segmentLayout  = "2006-01-02_15-04-05"
	segmentNameLen = len(segmentLayout) + 7
)

const segmentExt = ".mp4"

// SegmentName returns the file base name (without extension) of a segment
// starting at t.
func SegmentName(t time.Time) string {
	return string(appendSegmentName(make([]byte, 0, segmentNameLen), t))
}

// appendSegmentName appends SegmentName(t) to b. Digits are written by
// hand: loading an index of a million segments formats a million names.
func appendSegmentName(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, '_')
	b = appendDigits(b, hour, 2)
	b = append(b, '-')
	b = appendDigits(b, minute, 2)
	b = append(b, '-')
	b = appendDigits(b, sec, 2)
	b = append(b, '-')
	return appendDigits(b, t.Nanosecond()/1000, 6)
}

// appendDigits appends the n low decimal digits of v (v >= 0).
func appendDigits(b []byte, v, n int) []byte {
	for d := pow10[n-1]; d > 0; d /= 10 {
		b = append(b, byte('0'+v/d%10))
	}
	return b
}

var pow10 = [...]int{1, 10, 100, 1000, 10000, 100000}

// segmentFileName is SegmentName(t) + ".mp4" in one allocation.
func segmentFileName(t time.Time) string {
	return string(append(appendSegmentName(make([]byte, 0, segmentNameLen+len(segmentExt)), t), segmentExt...))
}

// parseSegmentName parses a segment base name in loc (UTC for our own
// segments, the recording host's zone for a mediamtx folder).
func parseSegmentName(name string, loc *time.Location) (time.Time, bool) {
	if len(name) != segmentNameLen || name[len(segmentLayout)] != '-' {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(segmentLayout, name[:len(segmentLayout)], loc)
	if err != nil {
		return time.Time{}, false
	}
	us := 0
	for _, c := range name[len(segmentLayout)+1:] {
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		us = us*10 + int(c-'0')
	}
	return t.Add(time.Duration(us) * time.Microsecond), true
}

// validName reports whether s may be used as one path element under the
// archive folder: a camera or device id, or an object id. It refuses
// anything a path trick could hide in (separators, dots only, NUL, control
// characters), so a name can never leave its folder.
func validName(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." || strings.HasPrefix(s, ".") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == '~':
		default:
			return false
		}
	}
	return true
}

func checkName(what, s string) error {
	if !validName(s) {
		return fmt.Errorf("%w: invalid %s %q: letters, digits, '-', '_', '.', '~' only", ErrBadRequest, what, s)
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
