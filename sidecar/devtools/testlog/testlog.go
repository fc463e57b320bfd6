// Package testlog sends a test's log lines to t.Log, so each shows beside the test that wrote
// it, only when that test fails or runs with -v.
package testlog

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

// New is a text logger at level Info writing to t.Log.
func New(t testing.TB) *slog.Logger { return Level(t, slog.LevelInfo) }

// Level is New at another level.
func Level(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(Writer(t), &slog.HandlerOptions{Level: level}))
}

// Writer is an io.Writer that writes each call as one t.Log line.
func Writer(t testing.TB) io.Writer { return writer{t} }

type writer struct{ t testing.TB }

func (w writer) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
