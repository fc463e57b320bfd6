// Package testlog sends a test's log lines to t.Log, so each shows beside the test that wrote
// it, only when that test fails or runs with -v.
package testlog

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
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

// Buffer is a writer that goroutines and the test may share: what a logger or a command wrote,
// read while they still write.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Has says whether s was written.
func (b *Buffer) Has(s string) bool { return strings.Contains(b.String(), s) }
