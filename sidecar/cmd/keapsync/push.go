package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/push"
)

// Push settings for serve: append pushFlags to serve's flags and build the pusher with
// newPusher; run it with (*push.Pusher).Run(ctx) beside the other parts.
var (
	pushSlotFlag = &cli.StringFlag{Name: "push-slot", EnvVars: []string{"KEAPSYNC_PUSH_SLOT"}, Value: push.DefaultConfig().Slot,
		Usage: "logical replication slot the push path owns (one per database; several serve processes share it, one streams)"}
	pushPublicationFlag = &cli.StringFlag{Name: "push-publication", EnvVars: []string{"KEAPSYNC_PUSH_PUBLICATION"},
		Value: push.DefaultConfig().Publication, Usage: "publication of the keap tables the push path reads"}
	pushWorkersFlag = &cli.IntFlag{Name: "push-workers", EnvVars: []string{"KEAPSYNC_PUSH_WORKERS"}, Value: push.DefaultConfig().Workers,
		Usage: "records pushed to Keap at once"}
	pushSettleFlag = &cli.DurationFlag{Name: "push-settle", EnvVars: []string{"KEAPSYNC_PUSH_SETTLE"}, Value: push.DefaultConfig().Settle,
		Usage: "how long a changed record rests before it is pushed, so a burst of edits becomes one call"}
	pushOffFlag = &cli.BoolFlag{Name: "no-push", EnvVars: []string{"KEAPSYNC_NO_PUSH"},
		Usage: "do not push local edits to Keap (no slot is created)"}

	pushMaxLagFlag = &cli.Int64Flag{Name: "push-max-slot-lag-mib", EnvVars: []string{"KEAPSYNC_MAX_SLOT_LAG_MIB"}, Value: 1024,
		Usage: "retained WAL past which keapsync_push_slot_lag_over_limit raises (0 disables)"}

	pushFlags = []cli.Flag{pushSlotFlag, pushPublicationFlag, pushWorkersFlag, pushSettleFlag, pushOffFlag, pushMaxLagFlag}
)

// newPusher builds the push path from serve's flags, the shared pool, the per-account Keap
// clients and the registry; it returns nil, nil with --no-push.
func newPusher(c *cli.Context, log *slog.Logger, reg prometheus.Registerer, pool *pgxpool.Pool, clients *keapClients) (*push.Pusher, error) {
	if c.Bool(pushOffFlag.Name) {
		return nil, nil
	}
	return pusherFor(log, reg, pool, clients, func(cfg *push.Config) {
		cfg.Slot, cfg.Publication = c.String(pushSlotFlag.Name), c.String(pushPublicationFlag.Name)
		cfg.Workers, cfg.Settle = c.Int(pushWorkersFlag.Name), c.Duration(pushSettleFlag.Name)
		cfg.MaxSlotLag = c.Int64(pushMaxLagFlag.Name) << 20
	})
}

// pusherFor builds a pusher with the defaults, adjusted by set (may be nil).
func pusherFor(log *slog.Logger, reg prometheus.Registerer, pool *pgxpool.Pool, clients *keapClients, set func(*push.Config)) (*push.Pusher, error) {
	cfg := push.DefaultConfig()
	cfg.DB, cfg.Log, cfg.Registerer = pool, log, reg
	cfg.API = func(ctx context.Context, account string) (push.Keap, error) { return clients.For(ctx, account) }
	if set != nil {
		set(&cfg)
	}
	return push.New(cfg)
}
