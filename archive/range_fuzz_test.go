package archive

import (
	"errors"
	"testing"
	"time"
)

func FuzzParseRange(f *testing.F) {
	for _, s := range [][2]string{
		{"2026-11-22T10:00:00Z", "2026-11-22T10:10:00Z"},
		{"2026-11-22T10:00:00+02:00", ""},
		{"2026-11-22T10:00:00.123456789Z", "2026-11-22T09:00:00Z"},
		{"1999-12-31T23:59:59Z", "2026-01-01T00:00:00Z"},
		{"9999-12-31T23:59:59Z", ""},
		{"yesterday", "now"},
		{"", ""},
		{"2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"},
	} {
		f.Add(s[0], s[1], true)
		f.Add(s[0], s[1], false)
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, start, end string, endOptional bool) {
		s, e, err := ParseRange(start, end, now, time.Hour, endOptional)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) || err.Error() == "" {
				t.Fatalf("error %v is not a bad request", err)
			}
			return
		}
		switch {
		case !s.Before(e):
			t.Fatalf("start %v not before end %v", s, e)
		case e.Sub(s) > time.Hour:
			t.Fatalf("range %v over the cap", e.Sub(s))
		case s.Before(minTime) || e.After(now.Add(maxFuture)):
			t.Fatalf("range %v–%v out of bounds", s, e)
		case end == "" && !endOptional:
			t.Fatal("missing end accepted")
		}
	})
}

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		start, end string
		optional   bool
		ok         bool
	}{
		{"2026-11-22T10:00:00Z", "2026-11-22T10:30:00Z", false, true},
		{"2026-11-22T11:30:00Z", "", true, true},
		{"2026-11-22T10:00:00Z", "", false, false},
		{"2026-11-22T10:30:00Z", "2026-11-22T10:00:00Z", false, false},
		{"2026-11-22T08:00:00Z", "2026-11-22T10:00:00Z", false, false}, // over the cap
		{"2026-11-22T10:00:00", "2026-11-22T10:30:00Z", false, false},  // no zone
		{"2026-11-25T10:00:00Z", "2026-11-25T10:30:00Z", false, false}, // far future
		{"1970-01-01T00:00:00Z", "1970-01-01T00:30:00Z", false, false},
	} {
		_, _, err := ParseRange(tc.start, tc.end, now, time.Hour, tc.optional)
		if (err == nil) != tc.ok {
			t.Errorf("ParseRange(%q, %q): %v, want ok=%v", tc.start, tc.end, err, tc.ok)
		}
	}
}

func TestNames(t *testing.T) {
	ts := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	name := SegmentName(ts)
	if name != "2026-11-22_10-00-00-123456" {
		t.Fatalf("SegmentName = %q", name)
	}
	back, ok := parseSegmentName(name, time.UTC)
	if !ok || !back.Equal(ts.Truncate(time.Microsecond)) {
		t.Fatalf("parse %q = %v %v", name, back, ok)
	}
	for _, bad := range []string{"", "..", "../x", "a/b", "a\\b", ".hidden", "x\x00y", "cam 1", string(make([]byte, 200))} {
		if validName(bad) {
			t.Errorf("validName(%q) = true", bad)
		}
	}
	for _, bad := range []string{"2026-11-22_10-00-00-12345x", "2026-11-22_10-00-00_123456", "../../../../etc/passwd000"} {
		if _, ok := parseSegmentName(bad, time.UTC); ok {
			t.Errorf("parseSegmentName(%q) accepted", bad)
		}
	}
}
