package main

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the sidecar: hook receiver, inbox workers, scheduled reconcile, token refresh, OAuth connect, health and metrics",
		Flags: append([]cli.Flag{listenFlag, publicURLFlag,
			&cli.DurationFlag{Name: "reconcile-every", Value: 10 * time.Minute, EnvVars: []string{"KEAPSYNC_RECONCILE_EVERY"}, Usage: "how often to sweep for changes hooks missed (0 disables)"},
			&cli.DurationFlag{Name: "coalesce", Value: 2 * time.Second, EnvVars: []string{"KEAPSYNC_COALESCE"}, Usage: "how long hooked ids gather before one fetch"},
			&cli.StringFlag{Name: "hook-signing-key", EnvVars: []string{"KEAPSYNC_HOOK_SIGNING_KEY"}, Usage: "require X-Hook-Signature (HMAC-SHA256) from a signing relay"},
		}, keapFlags...),
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s, err := openKeapSession(c, reg)
	if err != nil {
		return err
	}
	defer s.pool.Close()
	ctx := c.Context

	// Share each Keap budget with the other sidecar processes on this database.
	for _, b := range s.clients.budgets() {
		share, err := keap.NewBudgetShare(s.pool, b, keap.BudgetShareConfig{Logger: log})
		if err != nil {
			return err
		}
		if err := share.Start(ctx); err != nil {
			return err
		}
		defer share.Stop()
	}

	reconcile := c.Duration("reconcile-every")
	if reconcile == 0 {
		reconcile = -1
	}
	srv := &serve.Server{
		Config: serve.Config{Listen: c.String(listenFlag.Name), PublicURL: publicURL(c), ReconcileEvery: reconcile},
		DB:     s.pool, Log: log, Registry: reg,
		Receiver: &ingest.Receiver{DB: s.pool, SigningKey: []byte(c.String("hook-signing-key")), Log: log.With("component", "hooks")},
		Worker:   &ingest.Worker{DB: s.pool, API: s.apiOf, Window: c.Duration("coalesce"), Log: log.With("component", "ingest")},
		Sweeper:  &ingest.Sweeper{DB: s.pool, API: s.apiOf, Log: log.With("component", "reconcile")},
		Hooks: func(ctx context.Context, account string) (ingest.HookAPI, error) {
			return s.clients.For(ctx, account)
		},
	}
	if s.clients.keeper != nil {
		srv.Connect = s.clients.keeper.ConnectHandler(publicURL(c))
		srv.Tokens = s.clients.keeper
	}
	if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
