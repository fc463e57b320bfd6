package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/migrate"
)

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "apply pending schema migrations (recorded as `supabase db push` records them)",
		Description: "On plain PostgreSQL, first applies the Supabase compatibility bootstrap. " +
			"Each migration runs in one transaction; a failing one changes nothing and names its statement.",
		Flags: []cli.Flag{databaseURLFlag},
		Action: func(c *cli.Context) error {
			cfg, err := settings(c, readMigrateConfig)
			if err != nil {
				return err
			}
			return runMigrate(c.Context, c.App.Writer, cfg)
		},
	}
}

// migrateConfig is what `keapsync migrate` reads.
type migrateConfig struct {
	DB  dbSettings
	Log *slog.Logger
}

func readMigrateConfig(c *cli.Context) (migrateConfig, error) {
	log, err := newLogger(c)
	return migrateConfig{DB: readDBSettings(c), Log: log}, err
}

func (m *migrateConfig) Validate() error { return m.DB.Validate() }

func runMigrate(ctx context.Context, w io.Writer, cfg migrateConfig) error {
	conn, err := pgx.Connect(ctx, cfg.DB.DatabaseURL)
	if err != nil {
		return &connectError{err}
	}
	defer conn.Close(ctx)
	m, err := migrate.Embedded(cfg.Log.With("component", "migrate"))
	if err != nil {
		return err
	}
	res, err := m.Apply(ctx, conn)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "migrations: %d applied, %d already current\n", len(res.Applied), res.Current)
	return nil
}
