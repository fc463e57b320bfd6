package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/dashboard"
	"github.com/keapsync/keapsync/sidecar/doctor"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/notify"
	"github.com/keapsync/keapsync/sidecar/push"
	"github.com/keapsync/keapsync/sidecar/retention"
	"github.com/keapsync/keapsync/sidecar/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the sidecar: hook receiver, inbox workers, scheduled reconcile, token refresh, OAuth connect, health and metrics",
		Flags: append(append([]cli.Flag{listenFlag, publicURLFlag,
			&cli.DurationFlag{Name: "reconcile-every", Value: 10 * time.Minute, EnvVars: []string{"KEAPSYNC_RECONCILE_EVERY"}, Usage: "how often to sweep for changes hooks missed (0 disables)"},
			&cli.DurationFlag{Name: "coalesce", Value: 2 * time.Second, EnvVars: []string{"KEAPSYNC_COALESCE"}, Usage: "how long hooked ids gather before one fetch"},
		}, pushFlags...), slices.Concat(sweepFlags, hookSigningKeyFlag.Flags(), serveDashboardFlags, keapFlags, opsFlags)...),
		Action: runServe,
	}
}

var hookSigningKeyFlag = newSecret("hook-signing-key", "KEAPSYNC_HOOK_SIGNING_KEY", "require X-Hook-Signature (HMAC-SHA256) from a signing relay")

// serveConfig is everything serve reads from its flags and environment, read once by
// readServeConfig and checked by Validate before anything is opened.
type serveConfig struct {
	Keap     keapSettings
	Serve    serve.Config
	Coalesce time.Duration // how long hooked ids gather before one fetch
	// Sweep is how the scheduled reconcile (and a backfill serve runs) fetches and applies.
	Sweep      sweepSettings
	SigningKey string // KEAPSYNC_HOOK_SIGNING_KEY ("": hooks are not signed)
	// Push is the push path's settings (its DB, API, logger and registry are wired by serve);
	// nil with --no-push.
	Push *push.Config
	// Dashboard runs the dashboard inside serve; nil without Supabase Auth or --dashboard-local.
	Dashboard *dashboard.Config
	// Retention is how serve prunes what is past its window; nil when --prune-every is negative.
	Retention *retention.Config
	// NotifyURL receives the state changes that need a person ("": none are posted).
	NotifyURL string
}

func readServeConfig(c *cli.Context) (serveConfig, error) {
	var cfg serveConfig
	var err error
	if cfg.Keap, err = readKeapSettings(c, false); err != nil {
		return cfg, err
	}
	if cfg.SigningKey, err = hookSigningKeyFlag.get(c); err != nil {
		return cfg, err
	}
	cfg.Serve = serve.Config{Listen: c.String(listenFlag.Name), PublicURL: publicURL(c), ReconcileEvery: c.Duration("reconcile-every"),
		Stalls: stallThresholds(c)}
	if cfg.Serve.ReconcileEvery == 0 {
		cfg.Serve.ReconcileEvery = -1 // the flag's 0 disables; serve.Config's 0 means the default
	}
	cfg.Coalesce = c.Duration("coalesce")
	cfg.Sweep = readSweepSettings(c)
	if !c.Bool(pushOffFlag.Name) {
		p := pushConfig(c)
		cfg.Push = &p
		cfg.Serve.Slot = p.Slot // sampled for stall detection
	}
	if c.String(supabaseURLFlag.Name) != "" || c.Bool(serveDashboardLocalFlag.Name) {
		d, err := readDashboardConfig(c, serveDashboardListenFlag.Name, serveDashboardURLFlag.Name, serveDashboardLocalFlag.Name)
		if err != nil {
			return cfg, err
		}
		d.Stalls = cfg.Serve.Stalls
		cfg.Dashboard = &d
	}
	if every := c.Duration(pruneEveryFlag.Name); every >= 0 {
		r := retention.DefaultConfig()
		if every > 0 {
			r.Every = every
		}
		r.Batch = c.Int(pruneBatchFlag.Name)
		cfg.Retention = &r
	}
	cfg.NotifyURL, err = notifyURLSetting.get(c)
	return cfg, err
}

// Validate checks every setting, naming the variable of the first one wrong.
func (cfg *serveConfig) Validate() error {
	if err := cfg.Keap.Validate(false); err != nil {
		return err
	}
	if cfg.Coalesce < 0 {
		return errors.New("KEAPSYNC_COALESCE: negative")
	}
	if err := cfg.Sweep.Validate(); err != nil {
		return err
	}
	if cfg.Push != nil {
		if err := cfg.Push.ValidateSettings(); err != nil {
			return err
		}
	}
	if cfg.Dashboard != nil {
		return cfg.Dashboard.Validate()
	}
	return nil
}

func runServe(c *cli.Context) error {
	cfg, err := readServeConfig(c)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		return err
	}
	return runServeWith(c.Context, cfg)
}

// runServeWith runs serve on checked settings until ctx ends.
func runServeWith(ctx context.Context, cfg serveConfig) error {
	log := cfg.Keap.Log
	// Supabase's pooler, or a direct host this machine cannot reach, would fail later and less clearly.
	if err := doctor.CheckConnection(ctx, cfg.Keap.DatabaseURL, nil); err != nil {
		return err
	}
	reg := newRegistry()
	s, err := cfg.Keap.open(ctx, reg)
	if err != nil {
		return err
	}
	defer s.pool.Close()
	// Fail at start, naming the right, rather than on the first record that needs it.
	unseen, err := doctor.CheckRights(ctx, s.pool, cfg.Push != nil)
	if err != nil {
		return err
	}
	for _, m := range unseen {
		log.Warn("the database role sees no rows of a table; keapsync doctor says what to do", "lacks", m.Right)
	}
	var pusher *push.Pusher
	if cfg.Push != nil {
		if pusher, err = newPusher(*cfg.Push, log, reg, s); err != nil {
			return err
		}
	}
	srv, err := buildServer(log, reg, s, pusher, cfg.Serve, cfg.Sweep, cfg.Coalesce, []byte(cfg.SigningKey))
	if err != nil {
		return err
	}
	if cfg.Dashboard != nil {
		if srv.Dashboard, err = dashboard.New(*cfg.Dashboard, s.pool); err != nil {
			return err
		}
	}
	if cfg.Retention != nil {
		srv.Retention = &retention.Pruner{DB: s.pool, Config: *cfg.Retention, Log: log}
	}
	if cfg.NotifyURL != "" {
		srv.Notify = &notify.Notifier{URL: cfg.NotifyURL, DB: s.pool, Thresholds: cfg.Serve.Stalls, Log: log}
	}
	if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// buildServer wires serve's parts around one pool and the per-account Keap clients; the server
// starts and stops the clients' budget sharing with the other sidecar processes on the database.
func buildServer(log *slog.Logger, reg *prometheus.Registry, s *keapSession, pusher *push.Pusher,
	cfg serve.Config, sweep sweepSettings, coalesce time.Duration, signingKey []byte) (*serve.Server, error) {
	pool, clients := s.pool, s.clients
	srv := &serve.Server{
		Config: cfg, DB: pool, Log: log, Registry: reg,
		Receiver: &ingest.Receiver{DB: pool, SigningKey: signingKey, Log: log.With("component", "hooks")},
		Worker:   &ingest.Worker{DB: pool, API: s.apiOf, Window: coalesce, Log: log.With("component", "ingest")},
		Sweeper:  sweep.sweeper(pool, s.apiOf, log.With("component", "reconcile")),
		Hooks: func(ctx context.Context, account string) (ingest.HookAPI, error) {
			return clients.For(ctx, account)
		},
		Budgets:      clients.TenantBudgets,
		BudgetShares: clients,
	}
	if k := clients.Keeper(); k != nil {
		srv.Connect = k.ConnectHandler(cfg.PublicURL)
		srv.Tokens = k
	}
	if pusher != nil {
		srv.Push = pusher
	}
	return srv, nil
}
