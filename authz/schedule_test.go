package authz

import (
	"testing"
	"time"
)

func TestScheduleAt(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name       string
		w          Window
		at         string
		wantActive bool
		wantNext   string
	}{
		{"inside office hours", Window{Days: []string{"wed"}, From: "08:00", To: "18:00"}, "2026-03-04T10:00:00Z", true, "2026-03-04T18:00:00Z"},
		{"before office hours", Window{Days: []string{"wed"}, From: "08:00", To: "18:00"}, "2026-03-04T07:00:00Z", false, "2026-03-04T08:00:00Z"},
		{"next week", Window{Days: []string{"wed"}, From: "08:00", To: "18:00"}, "2026-03-04T19:00:00Z", false, "2026-03-11T08:00:00Z"},
		{"night shift crosses midnight", Window{Days: []string{"tue"}, From: "22:00", To: "06:00"}, "2026-03-04T05:00:00Z", true, "2026-03-04T06:00:00Z"},
		{"whole day to 24:00", Window{Days: []string{"wed"}, From: "00:00", To: "24:00"}, "2026-03-04T23:59:00Z", true, "2026-03-05T00:00:00Z"},
		{"utc offset", Window{Days: []string{"wed"}, From: "08:00", To: "18:00", TZ: "+02:00"}, "2026-03-04T06:30:00Z", true, "2026-03-04T16:00:00Z"},
		// Europe/Kyiv moves from UTC+2 to UTC+3 on Sunday 2026-03-29.
		{"dst start", Window{Days: []string{"sun", "mon"}, From: "08:00", To: "09:00", TZ: "Europe/Kyiv"}, "2026-03-29T05:30:00Z", true, "2026-03-29T06:00:00Z"},
		{"after dst", Window{Days: []string{"sun", "mon"}, From: "08:00", To: "09:00", TZ: "Europe/Kyiv"}, "2026-03-29T07:00:00Z", false, "2026-03-30T05:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws, err := compileSchedule("schedule", []Window{tc.w})
			if err != nil {
				t.Fatal(err)
			}
			active, next := scheduleAt(ws, utc(tc.at))
			if active != tc.wantActive || !next.Equal(utc(tc.wantNext)) {
				t.Fatalf("scheduleAt(%s) = %v, %v; want %v, %s", tc.at, active, next.UTC(), tc.wantActive, tc.wantNext)
			}
		})
	}
}

func TestScheduleRejects(t *testing.T) {
	for _, tc := range []struct {
		w     Window
		field string
	}{
		{Window{From: "08:00", To: "09:00"}, "schedule[0].days"},
		{Window{Days: []string{"funday"}, From: "08:00", To: "09:00"}, "schedule[0].days"},
		{Window{Days: []string{"mon"}, From: "8am", To: "09:00"}, "schedule[0].from"},
		{Window{Days: []string{"mon"}, From: "08:00", To: "24:30"}, "schedule[0].to"},
		{Window{Days: []string{"mon"}, From: "08:00", To: "08:00"}, "schedule[0].to"},
		{Window{Days: []string{"mon"}, From: "08:00", To: "09:00", TZ: "Nowhere/City"}, "schedule[0].tz"},
	} {
		_, err := compileSchedule("schedule", []Window{tc.w})
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != tc.field {
			t.Errorf("compileSchedule(%+v) = %v; want a 400 naming %s", tc.w, err, tc.field)
		}
	}
}
