package stream

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
)

// lossWarnings counts the hub's sustained-loss warnings.
type lossWarnings struct{ n atomic.Int32 }

func (w *lossWarnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *lossWarnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && r.Message == "sustained upstream packet loss" {
		w.n.Add(1)
	}
	return nil
}
func (w *lossWarnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *lossWarnings) WithGroup(string) slog.Handler      { return w }

// TestUpstreamLossIsCountedAndWarnedOnce pulls a camera of 9 Mbit/s over
// UDP into a 4 KiB socket buffer, so the kernel really drops packets: the
// stream counts them, says (once, in its log, and in Stats) that the
// loss is sustained and to use TCP. The same camera over TCP loses nothing.
func TestUpstreamLossIsCountedAndWarnedOnce(t *testing.T) {
	up := mediatest.StartUpstreamUDP(t)
	mediatest.Publish(t, up, mediatest.NoisyClip())
	for _, tc := range []struct {
		transport string
		lossy     bool
	}{{"udp", true}, {"tcp", false}} {
		t.Run(tc.transport, func(t *testing.T) {
			warns := &lossWarnings{}
			hub := &Hub{LossWindow: 200 * time.Millisecond, Logger: slog.New(warns),
				Sources: func(string) (source.Source, error) {
					return source.New(up.URL(), source.Options{Transport: tc.transport, UDPReadBuffer: 4096})
				}}
			if err := hub.Initialize(); err != nil {
				t.Fatal(err)
			}
			defer hub.Close()
			s, release, err := hub.Acquire(t.Context(), "cam1")
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			stats := func() Stats { return hub.Stats()[0] }
			if !tc.lossy {
				poll.Until(t, "3000 packets over TCP", func() bool { return s.received.Load() >= 3000 })
				if st := stats(); st.PacketsLost != 0 || st.LossWarning != "" || st.Transport != "TCP" {
					t.Fatalf("over TCP: %+v, want no loss on TCP", st)
				}
				return
			}
			poll.Until(t, "a sustained-loss warning", func() bool { return stats().LossWarning != "" })
			st := stats()
			if st.Transport != "UDP" || st.PacketsLost == 0 || !strings.Contains(st.LossWarning, "transport: tcp") {
				t.Fatalf("stats %+v: want UDP, packets lost and advice to use TCP", st)
			}
			// More lossy windows pass: the count grows, the log line stays one.
			lost := st.PacketsLost
			poll.Until(t, "more windows of loss", func() bool { return stats().PacketsLost > 2*lost })
			if n := warns.n.Load(); n != 1 {
				t.Fatalf("%d sustained-loss warnings, want exactly 1 within %v", n, lossWarnEvery)
			}
		})
	}
}
