package webrtc

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestPionLoggerKeepsRoutineTeardownOutOfWarnings(t *testing.T) {
	var buf bytes.Buffer
	l := pionLoggers{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}.NewLogger("ice")
	// What every leaving viewer produced (seen in the whep bench).
	l.Warnf("Failed to read from candidate %s %s: %v", "udp4 host", "127.0.0.1:40288", "io: read/write on closed pipe")
	l.Warn("Failed to accept RTP stream is already closed")
	l.Warnf("Failed to ping without candidate pairs. Connection is not possible yet.")
	if buf.Len() != 0 {
		t.Fatalf("routine teardown logged as a warning: %s", buf.String())
	}
	l.Warnf("Failed to handle DTLS: %v", "bad certificate")
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "bad certificate") {
		t.Fatalf("a real warning is lost: %q", buf.String())
	}
}
