package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/migrate"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
	"github.com/keapsync/keapsync/supabase"
)

const (
	demoDatabase  = "keapsync"
	demoAccount   = "00000000-0000-4000-8000-0000000000de" // supabase/seed.sql
	sqlDemoCounts = `select (select count(*) from keap.contacts where account_id = $1),
	                        (select count(*) from keap.orders where account_id = $1)`
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run a local keapsync with sample data (a private PostgreSQL under --dir)",
		Description: "Starts (or reuses) a PostgreSQL cluster with wal_level=logical under --dir, applies the " +
			"compatibility bootstrap and migrations, loads the sample data, and prints how to connect. " +
			"Safe to run again. `keapsync demo --stop` stops the database.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: ".data", Usage: "where the demo database lives"},
			&cli.IntFlag{Name: "pg-port", Value: 54329, EnvVars: []string{"KEAPSYNC_DEMO_PG_PORT"}, Usage: "port of the demo PostgreSQL on 127.0.0.1"},
			&cli.BoolFlag{Name: "stop", Usage: "stop the demo database and exit"},
			&cli.StringFlag{Name: "sandbox-addr", Value: "127.0.0.1:8089", Usage: "where the demo's Keap sandbox listens"},
			&cli.IntFlag{Name: "sandbox-contacts", Value: 3000, Usage: "contacts the demo sandbox generates"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "where the demo's keapsync serves (hooks, health, metrics)"},
			&cli.StringFlag{Name: "dashboard-listen", Value: "127.0.0.1:8090", Usage: "where the demo's dashboard listens"},
			&cli.BoolFlag{Name: "serve", Value: true, Usage: "keep the sandbox and keapsync running until interrupted (false: set up and exit)"},
		},
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			dir, err := filepath.Abs(c.String("dir"))
			if err != nil {
				return err
			}
			cluster := &pgcluster.Cluster{Dir: filepath.Join(dir, "pg"), Port: c.Int("pg-port")}
			ctx := c.Context
			if c.Bool("stop") {
				if !cluster.Running(ctx) {
					fmt.Fprintln(c.App.Writer, "demo database is not running")
					return nil
				}
				return cluster.Stop(ctx)
			}
			url, err := startDemoDatabase(ctx, cluster)
			if err != nil {
				return err
			}
			m, err := migrate.Embedded(log.With("component", "migrate"))
			if err != nil {
				return err
			}
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return fmt.Errorf("connect to demo database: %w", err)
			}
			defer conn.Close(ctx)
			res, err := m.Apply(ctx, conn)
			if err != nil {
				return err
			}
			if _, err := conn.Exec(ctx, supabase.Seed); err != nil {
				return fmt.Errorf("load sample data (supabase/seed.sql): %w", err)
			}
			var contacts, orders int
			if err := conn.QueryRow(ctx, sqlDemoCounts, demoAccount).Scan(&contacts, &orders); err != nil {
				return fmt.Errorf("count sample data: %w", err)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "\nkeapsync demo database is running (migrations: %d applied now, %d already there).\n",
				len(res.Applied), res.Current)
			fmt.Fprintf(w, "  %d contacts, %d orders in account \"Demo Company\"\n\n", contacts, orders)
			fmt.Fprintf(w, "Connect:  psql '%s'\n", url)
			fmt.Fprintf(w, "Try:      select given_name, family_name, email, company_name from keap.contacts limit 5;\n")
			fmt.Fprintf(w, "          select * from keapsync.kpi_orders_monthly order by month;\n")
			fmt.Fprintf(w, "Stop:     make demo-stop   (data stays in %s; `rm -rf %s` to start over)\n\n", dir, dir)
			return runDemoSandbox(c, log, url, dir)
		},
	}
}

// startDemoDatabase initialises and starts the cluster unless it runs already, and makes sure the
// demo database exists. Returns its URL.
func startDemoDatabase(ctx context.Context, cluster *pgcluster.Cluster) (string, error) {
	if !cluster.Initialized() {
		if err := cluster.Init(ctx); err != nil {
			return "", err
		}
	}
	if !cluster.Running(ctx) {
		if err := cluster.Start(ctx); err != nil {
			return "", err
		}
	}
	admin, err := pgx.Connect(ctx, cluster.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to demo PostgreSQL on port %d: %w", cluster.Port, err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", demoDatabase).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for the demo database: %w", err)
	}
	if !exists {
		if _, err := admin.Exec(ctx, "create database "+pgx.Identifier{demoDatabase}.Sanitize()); err != nil {
			return "", fmt.Errorf("create the demo database: %w", err)
		}
	}
	return cluster.URL(demoDatabase), nil
}
