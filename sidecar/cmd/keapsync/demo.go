package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/dashboard"
	"github.com/keapsync/keapsync/sidecar/migrate"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

const demoDatabase = "keapsync"

// The demo user (supabase/seed.sql's, so a database seeded for `supabase start` signs in the
// same way): the dashboard's local mode signs in as this user, who administers the account the
// demo connects.
const sqlDemoUser = `
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values ($1, 'authenticated', 'authenticated', 'demo@keapsync.local', '{"provider": "email"}', '{}', now(), now())
on conflict (id) do nothing`

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
			cfg, err := settings(c, readDemoConfig)
			if err != nil {
				return err
			}
			return runDemo(c.Context, c.App.Writer, cfg)
		},
	}
}

// demoConfig is what `keapsync demo` reads.
type demoConfig struct {
	Dir             string // where the demo database lives; Validate makes it absolute
	PGPort          int
	Stop            bool // stop the demo database and exit
	SandboxAddr     string
	SandboxContacts int
	Listen          string // where the demo's keapsync serves
	DashboardListen string
	Serve           bool // keep running until interrupted (false: set up and exit)
	Log             *slog.Logger
}

func readDemoConfig(c *cli.Context) (demoConfig, error) {
	log, err := newLogger(c)
	return demoConfig{Dir: c.String("dir"), PGPort: c.Int("pg-port"), Stop: c.Bool("stop"),
		SandboxAddr: c.String("sandbox-addr"), SandboxContacts: c.Int("sandbox-contacts"),
		Listen: c.String("listen"), DashboardListen: c.String("dashboard-listen"), Serve: c.Bool("serve"), Log: log}, err
}

// Validate makes the directory absolute: the cluster and the printed commands need it so.
func (d *demoConfig) Validate() error {
	var err error
	d.Dir, err = filepath.Abs(d.Dir)
	return err
}

func runDemo(ctx context.Context, w io.Writer, cfg demoConfig) error {
	dir := cfg.Dir
	cluster := &pgcluster.Cluster{Dir: filepath.Join(dir, "pg"), Port: cfg.PGPort}
	if cfg.Stop {
		if !cluster.Running(ctx) {
			fmt.Fprintln(w, "demo database is not running")
			return nil
		}
		return cluster.Stop(ctx)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	unlock, err := lockDemo(dir)
	if err != nil {
		return err
	}
	defer unlock()
	url, err := startDemoDatabase(ctx, cluster)
	if err != nil {
		return err
	}
	m, err := migrate.Embedded(cfg.Log.With("component", "migrate"))
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
	if _, err := conn.Exec(ctx, sqlDemoUser, dashboard.DemoUserID); err != nil {
		return fmt.Errorf("create the demo user: %w", err)
	}
	fmt.Fprintf(w, "\nkeapsync demo database is running (migrations: %d applied).\n", len(res.Applied))
	fmt.Fprintf(w, "It starts empty on every run, as the sandbox generates its Keap data anew: both sides start together.\n")
	fmt.Fprintf(w, "Connect:  psql '%s'\n", url)
	fmt.Fprintf(w, "Stop:     make demo-stop   (the database keeps running after Ctrl-C)\n\n")
	return runDemoSandbox(ctx, w, cfg, url)
}

// startDemoDatabase initialises and starts the cluster unless it runs already, and creates the
// demo database afresh: the sandbox regenerates its data on every run, so a database kept from
// the last run would hold edits and checkpoints Keap no longer has. Returns its URL.
func startDemoDatabase(ctx context.Context, cluster *pgcluster.Cluster) (string, error) {
	if !cluster.Initialized() {
		if err := cluster.Init(ctx); err != nil {
			return "", err
		}
	}
	if cluster.Running(ctx) {
		// Started by an earlier run with another --pg-port: the database is made afresh anyway,
		// so the server moves to the port asked for, where the printed commands point.
		was, err := cluster.ServingPort()
		if err != nil {
			return "", err
		}
		if was != cluster.Port {
			if err := cluster.Stop(ctx); err != nil {
				return "", fmt.Errorf("move the demo's PostgreSQL from port %d to %d: %w", was, cluster.Port, err)
			}
		}
	}
	if !cluster.Running(ctx) {
		err := cluster.Start(ctx)
		if errors.Is(err, pgcluster.ErrPortInUse) {
			return "", fmt.Errorf("the demo's PostgreSQL cannot listen on port %d, which another server holds: stop it, "+
				"or choose another port with --pg-port (or KEAPSYNC_DEMO_PG_PORT): %w", cluster.Port, err)
		}
		if err != nil {
			return "", err
		}
	}
	admin, err := pgx.Connect(ctx, cluster.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to demo PostgreSQL on port %d: %w", cluster.Port, err)
	}
	defer admin.Close(ctx)
	// A logical slot keeps its database from being dropped; whoever held it is gone (the demo
	// lock is ours) or is a serve pointed at the demo by hand, which the drop disconnects anyway.
	if _, err := admin.Exec(ctx, sqlEndDemoSlotHolders, demoDatabase); err != nil {
		return "", fmt.Errorf("end the last run's replication: %w", err)
	}
	if _, err := admin.Exec(ctx, sqlDropDemoSlots, demoDatabase); err != nil {
		return "", fmt.Errorf("drop the last run's replication slot: %w", err)
	}
	db := pgx.Identifier{demoDatabase}.Sanitize()
	if _, err := admin.Exec(ctx, "drop database if exists "+db+" with (force)"); err != nil {
		return "", fmt.Errorf("drop the last run's demo database: %w", err)
	}
	if _, err := admin.Exec(ctx, "create database "+db); err != nil {
		return "", fmt.Errorf("create the demo database: %w", err)
	}
	return cluster.URL(demoDatabase), nil
}

// The holder of a slot is ended first (waiting up to 5 s for it to go), then the slot dropped.
const (
	sqlEndDemoSlotHolders = `select pg_terminate_backend(active_pid, 5000) from pg_replication_slots
 where database = $1 and active_pid is not null`
	sqlDropDemoSlots = `select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1`
)

// lockDemo makes sure one demo runs per directory: a second one would fight the first for its
// ports and database. The lock ends with the process, however it ends.
func lockDemo(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "demo.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("demo lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("a demo is already running (it holds %s): use that one, or stop it with Ctrl-C first", path)
		}
		return nil, fmt.Errorf("demo lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
