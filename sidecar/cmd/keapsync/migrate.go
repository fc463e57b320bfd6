package main

import (
	"fmt"

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
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			dsn, err := required(c, databaseURLFlag)
			if err != nil {
				return err
			}
			conn, err := pgx.Connect(c.Context, dsn)
			if err != nil {
				return &connectError{err}
			}
			defer conn.Close(c.Context)
			m, err := migrate.Embedded(log.With("component", "migrate"))
			if err != nil {
				return err
			}
			res, err := m.Apply(c.Context, conn)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "migrations: %d applied, %d already current\n", len(res.Applied), res.Current)
			return nil
		},
	}
}
