package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/retention"
)

const (
	sqlAccountByName = `select id::text from keapsync.accounts where id::text = $1 or keap_tenant = $1`
	sqlPrunedWindow  = `select keapsync.history_window_of_pruned($1)`
)

var (
	pruneEveryFlag = &cli.DurationFlag{Name: "prune-every", Value: retention.DefaultConfig().Every, EnvVars: []string{"KEAPSYNC_PRUNE_EVERY"},
		Usage: "how often serve prunes rows past their retention window, in small batches (negative disables)"}
	pruneBatchFlag = &cli.IntFlag{Name: "prune-batch", Value: retention.DefaultConfig().Batch, EnvVars: []string{"KEAPSYNC_PRUNE_BATCH"},
		Usage: "rows of each kind deleted per transaction when pruning"}
	stallAfterFlag = &cli.DurationFlag{Name: "stall-after", Value: 15 * time.Minute, EnvVars: []string{"KEAPSYNC_STALL_AFTER"},
		Usage: "work waiting with nothing advancing for this long is a stall (/readyz fails, keapsync_stalled, notification)"}
	reconcileStallFlag = &cli.DurationFlag{Name: "reconcile-stall-after", Value: time.Hour, EnvVars: []string{"KEAPSYNC_RECONCILE_STALL_AFTER"},
		Usage: "no reconcile run for this long after the backfill finished is a stall"}
	notifyURLSetting = newSecret("notify-webhook-url", "KEAPSYNC_NOTIFY_WEBHOOK_URL",
		"post state changes that need a person to this Slack-compatible webhook URL")
	opsFlags = append([]cli.Flag{pruneEveryFlag, pruneBatchFlag, stallAfterFlag, reconcileStallFlag}, notifyURLSetting.Flags()...)
)

func stallThresholds(c *cli.Context) accountstate.Thresholds {
	return accountstate.Thresholds{Stall: c.Duration(stallAfterFlag.Name), Reconcile: c.Duration(reconcileStallFlag.Name)}
}

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete what is past its retention window (keapsync.retention; serve does this on its own), or --dry-run to show it",
		Flags: []cli.Flag{databaseURLFlag, manageAccountFlag, pruneBatchFlag,
			&cli.BoolFlag{Name: "dry-run", Usage: "count what would go; delete nothing"}},
		Action: func(c *cli.Context) error {
			cfg, err := settings(c, readPruneConfig)
			if err != nil {
				return err
			}
			return runPrune(c.Context, c.App.Writer, cfg)
		},
	}
}

// pruneConfig is what `keapsync prune` reads.
type pruneConfig struct {
	DB      dbSettings
	Account string // id or tenant ("": every account)
	Batch   int    // rows of each kind per transaction (retention's default when not positive)
	DryRun  bool
}

func readPruneConfig(c *cli.Context) (pruneConfig, error) {
	return pruneConfig{DB: readDBSettings(c), Account: c.String(manageAccountFlag.Name), Batch: c.Int(pruneBatchFlag.Name),
		DryRun: c.Bool("dry-run")}, nil
}

func (p *pruneConfig) Validate() error { return p.DB.Validate() }

func runPrune(ctx context.Context, out io.Writer, cfg pruneConfig) error {
	return cfg.DB.withPool(ctx, func(pool *pgxpool.Pool) error {
		account := ""
		if name := cfg.Account; name != "" {
			if err := pool.QueryRow(ctx, sqlAccountByName, name).Scan(&account); errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("no account %q (keapsync auth status lists them)", name)
			} else if err != nil {
				return fmt.Errorf("find account %q: %w", name, err)
			}
		}
		var counts []retention.Count
		var err error
		verb := "deleted"
		if cfg.DryRun {
			verb = "would delete"
			counts, err = retention.Plan(ctx, pool, account)
		} else {
			rcfg := retention.DefaultConfig()
			rcfg.Batch = cfg.Batch
			counts, err = retention.Prune(ctx, pool, rcfg, account, nil)
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "ACCOUNT\tTABLE\tROWS (%s)\n", verb)
		for _, n := range counts {
			acct := n.Account
			if acct == "" {
				acct = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\n", acct, n.What, n.Rows)
		}
		w.Flush()
		return err
	})
}

// rollbackNotFound words a rollback of a change that is not in the history: pruned (older than
// its account's history window) or never there.
func rollbackNotFound(ctx context.Context, pool *pgxpool.Pool, err error, id int64) error {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "P0002" {
		var days *int
		if qerr := pool.QueryRow(ctx, sqlPrunedWindow, id).Scan(&days); qerr == nil && days != nil {
			return fmt.Errorf("change %d is older than the history window (%d days) and was pruned: it can no longer be rolled back "+
				"(keapsync.retention.history_days sets the window)", id, *days)
		}
	}
	return notFound(err, "change", id, "keapsync history")
}
