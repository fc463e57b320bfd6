package push

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"
)

// Pusher carries local edits of the keap.* tables to Keap: a consumer tails the slot into the
// push queue, workers drain the queue into Keap calls.
type Pusher struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
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
	return &Pusher{cfg: cfg, log: cfg.Log.With("component", "push"), metrics: m}, nil
}

// Run consumes the slot, pushes queued records and samples the metrics until ctx ends
// (a clean exit returns nil). Any number of processes may run it against one database: one of
// them holds the slot, the others stand by for it, and all of them push.
func (p *Pusher) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Consume(ctx) })
	g.Go(func() error { return p.Work(ctx) })
	g.Go(func() error { return p.sample(ctx) })
	return g.Wait()
}
