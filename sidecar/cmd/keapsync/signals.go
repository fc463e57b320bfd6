package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// exitInterrupted is the exit code of a process stopped at once by a second signal (128 + SIGINT).
const exitInterrupted = 130

// signalContext is cancelled by the first SIGINT or SIGTERM, which starts a graceful shutdown:
// workers finish or hand back what they hold. A second signal cuts that short and exits at once,
// which is safe because nothing is acknowledged before it is durable (law 5); the chaos soak
// SIGKILLs serve at every stage to prove it.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go watchSignals(sigs, done, cancel, os.Stderr, os.Exit)
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// watchSignals cancels on the first signal and calls exit on the second, until done closes.
func watchSignals(sigs <-chan os.Signal, done <-chan struct{}, cancel func(), w io.Writer, exit func(int)) {
	select {
	case <-sigs:
	case <-done:
		return
	}
	fmt.Fprintln(w, "keapsync: shutting down; press Ctrl-C again to stop at once")
	cancel()
	select {
	case <-sigs:
		fmt.Fprintln(w, "keapsync: stopped at once")
		exit(exitInterrupted)
	case <-done:
	}
}
