package authz

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// window is a compiled schedule Window: a weekday mask and minute offsets
// within the local day.
type window struct {
	days     uint8 // bit i = time.Weekday(i)
	from, to int   // minutes since local midnight; to may be ≤ from (crosses midnight)
	loc      *time.Location
}

func parseWeekday(s string) (time.Weekday, bool) {
	switch strings.ToLower(s) {
	case "sun", "sunday":
		return time.Sunday, true
	case "mon", "monday":
		return time.Monday, true
	case "tue", "tuesday":
		return time.Tuesday, true
	case "wed", "wednesday":
		return time.Wednesday, true
	case "thu", "thursday":
		return time.Thursday, true
	case "fri", "friday":
		return time.Friday, true
	case "sat", "saturday":
		return time.Saturday, true
	}
	return 0, false
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, fmt.Errorf("want HH:MM, got %q", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("want HH:MM, got %q", s)
	}
	return hh*60 + mm, nil
}

// parseTZ accepts an IANA zone name, "UTC"/"Z", or a fixed offset "±HH:MM".
func parseTZ(s string) (*time.Location, error) {
	if s == "" || s == "UTC" || s == "Z" {
		return time.UTC, nil
	}
	if s[0] == '+' || s[0] == '-' {
		m, err := parseClock(s[1:])
		if err != nil || m > 18*60 {
			return nil, fmt.Errorf("invalid UTC offset %q", s)
		}
		off := m * 60
		if s[0] == '-' {
			off = -off
		}
		return time.FixedZone("UTC"+s, off), nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", s)
	}
	return loc, nil
}

// compileSchedule validates windows; field names the JSON field for errors.
func compileSchedule(field string, ws []Window) ([]window, error) {
	out := make([]window, 0, len(ws))
	for i, w := range ws {
		f := fmt.Sprintf("%s[%d]", field, i)
		var cw window
		if len(w.Days) == 0 {
			return nil, &FieldError{Field: f + ".days", Msg: "at least one day is required"}
		}
		for _, d := range w.Days {
			wd, ok := parseWeekday(d)
			if !ok {
				return nil, &FieldError{Field: f + ".days", Msg: fmt.Sprintf("unknown day %q (mon..sun)", d)}
			}
			cw.days |= 1 << wd
		}
		var err error
		if cw.from, err = parseClock(w.From); err != nil || cw.from == 24*60 {
			return nil, &FieldError{Field: f + ".from", Msg: "want HH:MM (00:00-23:59)"}
		}
		if cw.to, err = parseClock(w.To); err != nil {
			return nil, &FieldError{Field: f + ".to", Msg: "want HH:MM (00:00-24:00)"}
		}
		if cw.to == cw.from {
			return nil, &FieldError{Field: f + ".to", Msg: "must differ from from"}
		}
		if cw.loc, err = parseTZ(w.TZ); err != nil {
			return nil, &FieldError{Field: f + ".tz", Msg: err.Error()}
		}
		out = append(out, cw)
	}
	return out, nil
}

// scheduleAt reports whether now is inside any window and the next instant
// after now at which that could change (zero if the schedule is empty).
// An empty schedule means "always".
func scheduleAt(ws []window, now time.Time) (active bool, next time.Time) {
	if len(ws) == 0 {
		return true, time.Time{}
	}
	for _, w := range ws {
		local := now.In(w.loc)
		y, mo, d := local.Date()
		// A window that started yesterday may still be open; look a week ahead
		// so a window on one weekday always yields its next edge.
		for off := -1; off <= 7; off++ {
			day := time.Date(y, mo, d+off, 0, 0, 0, 0, w.loc)
			if w.days&(1<<day.Weekday()) == 0 {
				continue
			}
			start := time.Date(y, mo, d+off, 0, w.from, 0, 0, w.loc)
			endMin := w.to
			if w.to <= w.from {
				endMin += 24 * 60
			}
			end := time.Date(y, mo, d+off, 0, endMin, 0, 0, w.loc)
			if !now.Before(start) && now.Before(end) {
				active = true
			}
			for _, e := range [2]time.Time{start, end} {
				if e.After(now) && (next.IsZero() || e.Before(next)) {
					next = e
				}
			}
		}
	}
	return active, next
}

// nextMidnight is the first local midnight strictly after now in loc.
func nextMidnight(now time.Time, loc *time.Location) time.Time {
	l := now.In(loc)
	y, m, d := l.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}
