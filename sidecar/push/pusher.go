package push

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/keapsync/keapsync/sidecar/lifecycle"
)

// Pusher carries local edits of the keap.* tables to Keap: a consumer tails the slot into the
// push queue, workers drain the queue into Keap calls.
type Pusher struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	loop    lifecycle.Loop
	// wake rouses an idle worker when a change this process queued has rested for Settle, so
	// a single edit does not also wait out a PollInterval (workers of other processes poll).
	wake chan struct{}
}

// New checks cfg and builds a Pusher; nothing is touched until it runs.
func New(cfg Config) (*Pusher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Pusher{cfg: cfg, log: cfg.Log.With("component", "push"), metrics: m, wake: make(chan struct{}, 1)}, nil
}

// Start consumes the slot, pushes queued records and samples the metrics in the background
// until Stop or ctx ends. Any number of processes may run it against one database: one of them
// holds the slot, the others stand by for it, and all of them push.
func (p *Pusher) Start(ctx context.Context) error { return p.loop.Go(ctx, p.runAll) }

// Stop ends the push path and waits: what is in flight is recorded or left queued.
func (p *Pusher) Stop() { p.loop.Stop() }

// Done is closed when the push path has ended, by Stop or by an error Err returns.
func (p *Pusher) Done() <-chan struct{} { return p.loop.Done() }

// Err is why the push path ended (nil after Stop).
func (p *Pusher) Err() error { return p.loop.Err() }

// Run is Start, then Stop when ctx ends; it returns Err.
func (p *Pusher) Run(ctx context.Context) error { return lifecycle.Run(ctx, p) }

func (p *Pusher) runAll(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Consume(ctx) })
	g.Go(func() error { return p.Work(ctx) })
	g.Go(func() error { return p.sample(ctx) })
	return g.Wait()
}

// nudge wakes one idle worker, if none is woken already.
func (p *Pusher) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}
