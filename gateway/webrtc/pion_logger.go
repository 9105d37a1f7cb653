package webrtc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// pionLoggers routes pion's leveled logs into slog. pion is chatty at info
// level about normal ICE/DTLS progress, so its info and below become debug;
// its warnings and errors stay visible.
type pionLoggers struct{ log *slog.Logger }

func (f pionLoggers) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(string)                      {}
func (l pionLogger) Tracef(string, ...any)             {}
func (l pionLogger) Debug(msg string)                  { l.log.Debug(msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Info(msg string)                   { l.log.Debug(msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.warn(msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelWarn) {
		l.warn(fmt.Sprintf(format, args...))
	}
}

// warn logs a pion warning, except the ones that every normal viewer's
// coming and going produces, which are debug: a warning per viewer that
// leaves would bury the warnings that matter.
func (l pionLogger) warn(msg string) {
	if isRoutine(msg) {
		l.log.Debug(msg)
		return
	}
	l.log.Warn(msg)
}

// routineWarnings are pion warnings that say nothing is wrong:
//   - a peer connection closing while its reader still runs (closed pipe,
//     stream already closed), which is how every session ends;
//   - ICE pinging before the browser's first check arrived;
//   - the advice against one mux on an unspecified address: the server
//     gives that mux every interface (UDPMuxParams.Net), which is how the
//     default ":8189" works (tested in Chromium).
var routineWarnings = []string{
	"read/write on closed pipe",
	"use of closed network connection",
	"stream is already closed",
	"Failed to ping without candidate pairs",
	"UDPMuxDefault should not listening on unspecified address",
}

func isRoutine(msg string) bool {
	for _, r := range routineWarnings {
		if strings.Contains(msg, r) {
			return true
		}
	}
	return false
}
func (l pionLogger) Error(msg string)                  { l.log.Error(msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }
