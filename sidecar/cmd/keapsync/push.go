package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/push"
)

// Push settings for serve: append pushFlags to serve's flags and build the pusher with
// newPusher; serve starts it beside the other parts.
var (
	pushSlotFlag = &cli.StringFlag{Name: "push-slot", EnvVars: []string{"KEAPSYNC_PUSH_SLOT"}, Value: push.DefaultConfig().Slot,
		Usage: "logical replication slot the push path owns (one per database; several serve processes share it, one streams)"}
	pushPublicationFlag = &cli.StringFlag{Name: "push-publication", EnvVars: []string{"KEAPSYNC_PUSH_PUBLICATION"},
		Value: push.DefaultConfig().Publication, Usage: "publication of the keap tables the push path reads"}
	pushWorkersFlag = &cli.IntFlag{Name: "push-workers", EnvVars: []string{"KEAPSYNC_PUSH_WORKERS"}, Value: push.DefaultConfig().Workers,
		Usage: "records pushed to Keap at once"}
	pushSettleFlag = &cli.DurationFlag{Name: "push-settle", EnvVars: []string{"KEAPSYNC_PUSH_SETTLE"}, Value: push.DefaultConfig().Settle,
		Usage: "how long a changed record rests before it is pushed, so a burst of edits becomes one call"}
	pushMaxSettleFlag = &cli.DurationFlag{Name: "push-max-settle", EnvVars: []string{"KEAPSYNC_PUSH_MAX_SETTLE"},
		Value: push.DefaultConfig().MaxSettle,
		Usage: "longest a hot record rests after its first queued change (and least between two pushes of a record edited again); at least --push-settle"}
	pushKnownForFlag = &cli.DurationFlag{Name: "push-known-for", EnvVars: []string{"KEAPSYNC_PUSH_KNOWN_FOR"},
		Value: push.DefaultConfig().KnownFor,
		Usage: "how long a Keap version applied here stands for Keap's current one, so an update goes without the fetch first (0: always fetch; see README)"}
	pushOffFlag = &cli.BoolFlag{Name: "no-push", EnvVars: []string{"KEAPSYNC_NO_PUSH"},
		Usage: "do not push local edits to Keap (no slot is created)"}

	pushMaxLagFlag = &cli.Int64Flag{Name: "push-max-slot-lag-mib", EnvVars: []string{"KEAPSYNC_MAX_SLOT_LAG_MIB"}, Value: 1024,
		Usage: "retained WAL past which keapsync_push_slot_lag_over_limit raises (0 disables)"}

	pushFlags = []cli.Flag{pushSlotFlag, pushPublicationFlag, pushWorkersFlag, pushSettleFlag, pushMaxSettleFlag, pushKnownForFlag,
		pushOffFlag, pushMaxLagFlag}
)

// pushConfig reads the push flags into the defaults.
func pushConfig(c *cli.Context) push.Config {
	cfg := push.DefaultConfig()
	cfg.Slot, cfg.Publication = c.String(pushSlotFlag.Name), c.String(pushPublicationFlag.Name)
	cfg.Workers, cfg.Settle = c.Int(pushWorkersFlag.Name), c.Duration(pushSettleFlag.Name)
	cfg.MaxSettle, cfg.KnownFor = c.Duration(pushMaxSettleFlag.Name), c.Duration(pushKnownForFlag.Name)
	cfg.MaxSlotLag = c.Int64(pushMaxLagFlag.Name) << 20
	return cfg
}

// newPusher builds the push path of cfg on the session's pool and per-account Keap clients.
func newPusher(cfg push.Config, log *slog.Logger, reg prometheus.Registerer, s *keapSession) (*push.Pusher, error) {
	cfg.DB, cfg.Log, cfg.Registerer = s.pool, log, reg
	cfg.API = func(ctx context.Context, account string) (push.Keap, error) { return s.clients.For(ctx, account) }
	return push.New(cfg)
}
