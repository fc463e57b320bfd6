package lifecycle_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/keapsync/keapsync/sidecar/lifecycle"
)

// part records its starts and stops in a shared log; fail makes Start fail, and a part with a
// body runs it in a Loop.
type part struct {
	lifecycle.Loop
	name string
	log  *journal
	fail error
	body func(ctx context.Context) error
}

type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, s)
}

func (p *part) Start(ctx context.Context) error {
	if p.fail != nil {
		return p.fail
	}
	p.log.add("start " + p.name)
	body := p.body
	if body == nil {
		body = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	}
	return p.Go(ctx, body)
}

func (p *part) Stop() {
	p.Loop.Stop()
	p.log.add("stop " + p.name)
}

func TestRunStopsInReverseOrderWhenCtxEnds(t *testing.T) {
	t.Parallel()
	j := &journal{}
	a, b := &part{name: "a", log: j}, &part{name: "b", log: j}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- lifecycle.Run(ctx, a, b) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("a cancelled run: %v", err)
	}
	if want := []string{"start a", "start b", "stop b", "stop a"}; !slices.Equal(j.lines, want) {
		t.Errorf("got %v, want %v", j.lines, want)
	}
}

func TestAPartThatFailsEndsTheRun(t *testing.T) {
	t.Parallel()
	j := &journal{}
	boom := errors.New("boom")
	a := &part{name: "a", log: j}
	b := &part{name: "b", log: j, body: func(context.Context) error { return boom }}
	if err := lifecycle.Run(context.Background(), a, b); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if !slices.Contains(j.lines, "stop a") {
		t.Errorf("a was not stopped: %v", j.lines)
	}
}

func TestACleanEndLeavesTheOthersRunning(t *testing.T) {
	t.Parallel()
	j := &journal{}
	ended := make(chan struct{})
	a := &part{name: "a", log: j}
	b := &part{name: "b", log: j, body: func(context.Context) error { close(ended); return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- lifecycle.Run(ctx, a, b) }()
	<-ended
	<-b.Done()
	select {
	case err := <-done:
		t.Fatalf("the run ended with b: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAFailedStartStopsThoseStarted(t *testing.T) {
	t.Parallel()
	j := &journal{}
	refused := errors.New("cannot listen")
	a, b := &part{name: "a", log: j}, &part{name: "b", log: j, fail: refused}
	if err := lifecycle.Run(context.Background(), a, b); !errors.Is(err, refused) {
		t.Fatalf("got %v", err)
	}
	if want := []string{"start a", "stop a"}; !slices.Equal(j.lines, want) {
		t.Errorf("got %v, want %v", j.lines, want)
	}
}

func TestLoopStartsOnceAtATime(t *testing.T) {
	t.Parallel()
	var l lifecycle.Loop
	l.Stop() // never started: nothing to do
	if l.Done() != nil {
		t.Error("a loop never started is done")
	}
	block := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	if err := l.Go(context.Background(), block); err != nil {
		t.Fatal(err)
	}
	if err := l.Go(context.Background(), block); !errors.Is(err, lifecycle.ErrStarted) {
		t.Errorf("second Go: %v", err)
	}
	l.Stop()
	if err := l.Err(); err != nil {
		t.Errorf("a stopped loop's error: %v (cancelled is a clean exit)", err)
	}
	if err := l.Go(context.Background(), block); err != nil {
		t.Errorf("Go after Stop: %v", err)
	}
	l.Stop()
}
