package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
)

func TestFirstSignalCancelsSecondExits(t *testing.T) {
	t.Parallel()
	sigs := make(chan os.Signal, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan int, 1)
	var out testlog.Buffer
	go watchSignals(sigs, make(chan struct{}), cancel, &out, func(code int) { exited <- code })

	sigs <- os.Interrupt
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first signal did not cancel the context")
	}
	select {
	case code := <-exited:
		t.Fatalf("the first signal exited (%d): a graceful shutdown must be allowed to finish", code)
	default:
	}
	sigs <- os.Interrupt
	select {
	case code := <-exited:
		if code != exitInterrupted {
			t.Fatalf("exit code %d, want %d", code, exitInterrupted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second signal did not cut the shutdown short")
	}
	if !strings.Contains(out.String(), "again to stop at once") {
		t.Fatalf("the user was not told a second Ctrl-C stops at once: %q", out.String())
	}
}

func TestNoExitAfterCleanStop(t *testing.T) {
	t.Parallel()
	sigs := make(chan os.Signal, 2)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		watchSignals(sigs, done, func() {}, &testlog.Buffer{}, func(int) { t.Error("exit after a clean stop") })
		close(finished)
	}()
	sigs <- os.Interrupt
	close(done)
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher outlived the process's clean stop")
	}
}
