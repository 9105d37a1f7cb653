package hls

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
)

// logRecords keeps "LEVEL message" of every record.
type logRecords struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Level.String()+" "+r.Message)
	l.mu.Unlock()
	return nil
}

func (l *logRecords) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.recs...)
}

// TestEncodeLogPartTargetChangeIsNotAWarning drives a real gohlslib muxer
// with 25 fps video whose frames are 1 ms late now and then, as a camera's
// are: gohlslib reports the part target moving between 200 and 201 ms
// through OnEncodeError, and camgate logs it at debug, not as an encode
// error. (It also pins gohlslib's wording, which the check relies on.)
func TestEncodeLogPartTargetChangeIsNotAWarning(t *testing.T) {
	t.Parallel()
	logs := &logRecords{}
	el := &encodeLog{log: slog.New(logs)}
	track := &gohlslib.Track{Codec: &codecs.H264{SPS: benchSPS, PPS: []byte{0x08}}, ClockRate: 90000}
	m := &gohlslib.Muxer{Tracks: []*gohlslib.Track{track}, Variant: gohlslib.MuxerVariantLowLatency,
		SegmentMinDuration: time.Second, OnEncodeError: el.report}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	idr := make([]byte, 256)
	idr[0] = 0x65
	now := time.Now()
	pts := int64(0)
	for i := range 25 * 20 {
		if i%37 == 36 {
			pts += 90 // 1 ms late
		}
		if err := m.WriteH264(track, now, pts, [][]byte{benchSPS, {0x08}, idr}); err != nil {
			t.Fatal(err)
		}
		pts += 90000 / 25
	}
	recs := logs.all()
	if el.partTargetChanges == 0 {
		t.Fatalf("gohlslib reported no part target change (its wording changed?); logged %q", recs)
	}
	for _, r := range recs {
		if r != "DEBUG hls part target duration changed" {
			t.Fatalf("logged %q", recs)
		}
	}
	if el.errors != 0 {
		t.Fatalf("%d encode errors counted", el.errors)
	}
}

func TestEncodeLogLevels(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		reports []error
		want    []string
		errors  int
	}{
		{
			name:    "part target",
			reports: []error{errors.New("part duration changed from 200ms to 201ms - this will cause an error in iOS clients")},
			want:    []string{"DEBUG hls part target duration changed"},
		},
		{
			name:    "segment target",
			reports: []error{errors.New("segment duration changed from 1s to 2s - this will cause an error in iOS clients")},
			want:    []string{"WARN hls segment target duration grew (a longer GOP or a gap in the stream)"},
		},
		{
			// A part target change first must not hide the first real error.
			name: "real errors warned once",
			reports: []error{
				errors.New("part duration changed from 200ms to 201ms - this will cause an error in iOS clients"),
				errors.New("unable to extract DTS: too many reordered frames"),
				errors.New("unable to extract DTS: too many reordered frames"),
			},
			want:   []string{"DEBUG hls part target duration changed", "WARN hls muxer encode error"},
			errors: 2,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs := &logRecords{}
			el := &encodeLog{log: slog.New(logs)}
			for _, err := range c.reports {
				el.report(err)
			}
			if got := logs.all(); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("logged %q, want %q", got, c.want)
			}
			if el.errors != c.errors {
				t.Fatalf("%d encode errors counted, want %d", el.errors, c.errors)
			}
		})
	}
}
