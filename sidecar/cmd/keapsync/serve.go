package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/dashboard"
	"github.com/keapsync/keapsync/sidecar/doctor"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
	"github.com/keapsync/keapsync/sidecar/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the sidecar: hook receiver, inbox workers, scheduled reconcile, token refresh, OAuth connect, health and metrics",
		Flags: append(append([]cli.Flag{listenFlag, publicURLFlag,
			&cli.DurationFlag{Name: "reconcile-every", Value: 10 * time.Minute, EnvVars: []string{"KEAPSYNC_RECONCILE_EVERY"}, Usage: "how often to sweep for changes hooks missed (0 disables)"},
			&cli.DurationFlag{Name: "coalesce", Value: 2 * time.Second, EnvVars: []string{"KEAPSYNC_COALESCE"}, Usage: "how long hooked ids gather before one fetch"},
		}, pushFlags...), slices.Concat(hookSigningKeyFlag.Flags(), serveDashboardFlags, keapFlags, opsFlags)...),
		Action: runServe,
	}
}

var hookSigningKeyFlag = newSecret("hook-signing-key", "KEAPSYNC_HOOK_SIGNING_KEY", "require X-Hook-Signature (HMAC-SHA256) from a signing relay")

func runServe(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	// Supabase's pooler, or a direct host this machine cannot reach, would fail later and less clearly.
	if err := doctor.CheckConnection(c.Context, c.String(databaseURLFlag.Name), nil); err != nil {
		return err
	}
	signingKey, err := hookSigningKeyFlag.get(c)
	if err != nil {
		return err
	}
	reg := newRegistry()
	s, err := openKeapSession(c, reg)
	if err != nil {
		return err
	}
	defer s.pool.Close()
	// Fail at start, naming the right, rather than on the first record that needs it.
	unseen, err := doctor.CheckRights(c.Context, s.pool, !c.Bool("no-push"))
	if err != nil {
		return err
	}
	for _, m := range unseen {
		log.Warn("the database role sees no rows of a table; keapsync doctor says what to do", "lacks", m.Right)
	}
	reconcile := c.Duration("reconcile-every")
	if reconcile == 0 {
		reconcile = -1
	}
	pusher, err := newPusher(c, log, reg, s.pool, s.clients)
	if err != nil {
		return err
	}
	pruner, notifier, err := opsParts(c, s.pool)
	if err != nil {
		return err
	}
	slot := ""
	if pusher != nil {
		slot = c.String(pushSlotFlag.Name)
	}
	srv, stop, err := buildServer(c.Context, log, reg, s.pool, s.clients, pusher, serve.Config{
		Listen: c.String(listenFlag.Name), PublicURL: publicURL(c), ReconcileEvery: reconcile,
		Stalls: stallThresholds(c), Slot: slot},
		c.Duration("coalesce"), []byte(signingKey))
	if err != nil {
		return err
	}
	defer stop()
	if pruner != nil {
		srv.Retention = pruner
	}
	if notifier != nil {
		srv.Notify = notifier
	}
	if c.String(supabaseURLFlag.Name) != "" || c.Bool(serveDashboardLocalFlag.Name) {
		cfg, err := dashboardConfig(c, serveDashboardListenFlag.Name, serveDashboardURLFlag.Name, serveDashboardLocalFlag.Name)
		if err != nil {
			return err
		}
		cfg.Stalls = stallThresholds(c)
		if srv.Dashboard, err = dashboard.New(cfg, s.pool); err != nil {
			return err
		}
	}
	if err := srv.Run(c.Context); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// buildServer wires serve's parts around one pool and the per-account Keap clients, and starts
// sharing the Keap budgets with the other sidecar processes on this database. Call stop when done.
func buildServer(ctx context.Context, log *slog.Logger, reg *prometheus.Registry, pool *pgxpool.Pool,
	clients *keapClients, pusher *push.Pusher, cfg serve.Config, coalesce time.Duration, signingKey []byte) (*serve.Server, func(), error) {
	var shares []*keap.BudgetShare
	stop := func() {
		for _, s := range shares {
			s.Stop()
		}
	}
	for _, b := range clients.budgets() {
		share, err := keap.NewBudgetShare(pool, b, keap.BudgetShareConfig{Logger: log})
		if err == nil {
			err = share.Start(ctx)
		}
		if err != nil {
			stop()
			return nil, nil, err
		}
		shares = append(shares, share)
	}
	apiOf := func(ctx context.Context, account string) (ingest.Keap, error) { return clients.For(ctx, account) }
	srv := &serve.Server{
		Config: cfg, DB: pool, Log: log, Registry: reg,
		Receiver: &ingest.Receiver{DB: pool, SigningKey: signingKey, Log: log.With("component", "hooks")},
		Worker:   &ingest.Worker{DB: pool, API: apiOf, Window: coalesce, Log: log.With("component", "ingest")},
		Sweeper:  &ingest.Sweeper{DB: pool, API: apiOf, Log: log.With("component", "reconcile")},
		Hooks: func(ctx context.Context, account string) (ingest.HookAPI, error) {
			return clients.For(ctx, account)
		},
		Budgets: clients.tenantBudgets,
	}
	if clients.keeper != nil {
		srv.Connect = clients.keeper.ConnectHandler(cfg.PublicURL)
		srv.Tokens = clients.keeper
	}
	if pusher != nil {
		srv.Push = pusher
	}
	return srv, stop, nil
}
