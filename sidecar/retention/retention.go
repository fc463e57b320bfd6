// Package retention keeps keapsync's own tables bounded: it calls keapsync.prune, which decides
// per account what is past its window, in small batches with pauses between them, so no delete
// holds locks for long or leaves a burst of dead rows for vacuum.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/lifecycle"
)

// Querier is what pruning needs: a pool or a connection (each batch commits on its own).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Config of a Pruner.
type Config struct {
	Every     time.Duration // how often a pruning round starts (default 10 minutes)
	Batch     int           // rows of each kind deleted per call (default 500)
	Pause     time.Duration // between batches, so other work gets the table (default 200 ms)
	MaxRounds int           // batches per round at most; the next round goes on (default 200)
}

// DefaultConfig is what serve uses.
func DefaultConfig() Config {
	return Config{Every: 10 * time.Minute, Batch: 500, Pause: 200 * time.Millisecond, MaxRounds: 200}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Every <= 0 {
		c.Every = d.Every
	}
	if c.Batch <= 0 {
		c.Batch = d.Batch
	}
	if c.Pause < 0 {
		c.Pause = 0
	} else if c.Pause == 0 {
		c.Pause = d.Pause
	}
	if c.MaxRounds <= 0 {
		c.MaxRounds = d.MaxRounds
	}
	return c
}

// Count is how many rows of one kind go (or went) for one account ("" for rows of no account).
type Count struct {
	Account string
	What    string
	Rows    int64
}

const sqlPrune = `select coalesce(account_id::text, ''), what, rows
  from keapsync.prune(nullif($1, '')::uuid, $2, $3, coalesce($4::timestamptz, now()))`

// Plan counts what keapsync.prune would delete now for account ("" for every account).
func Plan(ctx context.Context, q Querier, account string) ([]Count, error) {
	return call(ctx, q, account, 1, true, nil)
}

// Prune deletes everything past its window for account ("" for every account), batch by
// batch, and returns the totals. now, when set, is the clock (tests move it).
func Prune(ctx context.Context, q Querier, cfg Config, account string, now *time.Time) ([]Count, error) {
	cfg = cfg.withDefaults()
	totals := map[[2]string]int64{}
	var order [][2]string
	for round := 0; round < cfg.MaxRounds; round++ {
		counts, err := call(ctx, q, account, cfg.Batch, false, now)
		if err != nil {
			return collect(totals, order), err
		}
		full := false
		for _, c := range counts {
			k := [2]string{c.Account, c.What}
			if _, ok := totals[k]; !ok {
				order = append(order, k)
			}
			totals[k] += c.Rows
			// oauth is deleted whole on every call; the others stop at the batch size.
			if c.Rows >= int64(cfg.Batch) && c.What != "oauth" {
				full = true
			}
		}
		if !full {
			break
		}
		select {
		case <-ctx.Done():
			return collect(totals, order), ctx.Err()
		case <-time.After(cfg.Pause):
		}
	}
	return collect(totals, order), nil
}

func collect(totals map[[2]string]int64, order [][2]string) []Count {
	out := make([]Count, 0, len(order))
	for _, k := range order {
		out = append(out, Count{Account: k[0], What: k[1], Rows: totals[k]})
	}
	return out
}

func call(ctx context.Context, q Querier, account string, batch int, dry bool, now *time.Time) ([]Count, error) {
	rows, err := q.Query(ctx, sqlPrune, account, batch, dry, now)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Count, error) {
		var c Count
		err := r.Scan(&c.Account, &c.What, &c.Rows)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	return out, nil
}

// Pruner prunes every account on a schedule (serve runs one).
type Pruner struct {
	DB     Querier
	Config Config
	Log    *slog.Logger

	loop lifecycle.Loop // the scheduled rounds (Start, Stop)
}

// Start prunes now and then every Config.Every in the background until Stop or ctx ends; a
// failed round is logged and the next one retries.
func (p *Pruner) Start(ctx context.Context) error { return p.loop.Go(ctx, p.run) }

// Stop ends the rounds and waits: the batch in hand commits or rolls back whole.
func (p *Pruner) Stop() { p.loop.Stop() }

// Done is closed when the rounds have ended.
func (p *Pruner) Done() <-chan struct{} { return p.loop.Done() }

// Err is why the rounds ended (nil after Stop: a failed round never ends them).
func (p *Pruner) Err() error { return p.loop.Err() }

// Run is Start, then Stop when ctx ends; it returns Err.
func (p *Pruner) Run(ctx context.Context) error { return lifecycle.Run(ctx, p) }

func (p *Pruner) run(ctx context.Context) error {
	cfg := p.Config.withDefaults()
	log := p.Log.With("component", "retention")
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for {
		counts, err := Prune(ctx, p.DB, cfg, "", nil)
		if err != nil && ctx.Err() == nil {
			log.Warn("pruning failed; the next round retries", "err", err)
		}
		var n int64
		for _, c := range counts {
			n += c.Rows
		}
		if n > 0 {
			log.Info("pruned rows past their retention window", "rows", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
