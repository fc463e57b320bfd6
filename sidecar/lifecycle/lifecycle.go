// Package lifecycle is the one shape of keapsync's long-running parts: Start(ctx) returns once
// the part runs (or says why it cannot), Stop ends it and waits until it has; Run wires parts
// together with errgroup, as serve does.
package lifecycle

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Part is a long-running part. Start returns once the part runs, or with the reason it cannot;
// Stop drains it (work in hand finishes or is handed back) and returns when it has ended.
type Part interface {
	Start(ctx context.Context) error
	Stop()
}

// ender is a Part that can end by itself (a fatal error), which ends Run too.
type ender interface {
	Done() <-chan struct{}
	Err() error
}

// Loop runs a part's blocking body in the background: a part keeps one, has Start call Go, and
// forwards Stop, Done and Err to it (kept unexported, so no caller can start another body).
// The body runs until its context ends (Stop, or the caller's ctx) or it returns by itself.
type Loop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// ErrStarted is Go's answer for a part that is running already.
var ErrStarted = errors.New("already started")

// Go starts body; it fails if a previous body is still running.
func (l *Loop) Go(ctx context.Context, body func(ctx context.Context) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		select {
		case <-l.done:
		default:
			return ErrStarted
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	l.cancel, l.done, l.err = cancel, done, nil
	go func() {
		err := body(ctx)
		if errors.Is(err, context.Canceled) {
			err = nil // stopping is a clean exit
		}
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		cancel()
		close(done)
	}()
	return nil
}

// Stop cancels the body and waits until it has returned. Stopping a loop that never started
// does nothing.
func (l *Loop) Stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Done is closed once the body has returned (a loop never started is not done).
func (l *Loop) Done() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		return nil
	}
	return l.done
}

// Err is why the body returned: nil for a clean exit.
func (l *Loop) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Run starts the parts in order and runs until ctx ends or one of them fails by itself; then
// it stops them all, the last started first, and returns the first error (nil when ctx ended
// and every part stopped cleanly). A part that fails to start stops those started before it.
func Run(ctx context.Context, parts ...Part) error {
	g, gctx := errgroup.WithContext(ctx)
	started := make([]Part, 0, len(parts))
	var startErr error
	for _, p := range parts {
		if err := p.Start(gctx); err != nil {
			startErr = err
			break
		}
		started = append(started, p)
		if e, ok := p.(ender); ok {
			g.Go(func() error {
				select {
				case <-e.Done():
					return e.Err() // an error ends the run; a clean end leaves the others running
				case <-gctx.Done():
					return nil
				}
			})
		}
	}
	if startErr == nil {
		<-gctx.Done()
	}
	for i := len(started) - 1; i >= 0; i-- {
		started[i].Stop()
	}
	err := g.Wait()
	if startErr != nil {
		err = startErr
	}
	return err
}
