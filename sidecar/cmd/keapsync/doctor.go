package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/doctor"
	"github.com/keapsync/keapsync/sidecar/migrate"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check the database, the push slot, migrations, tokens, hooks and clock skew, and say what to do",
		Flags: []cli.Flag{databaseURLFlag, apiURLFlag,
			&cli.StringFlag{Name: "dashboard-database-url", EnvVars: []string{"KEAPSYNC_DASHBOARD_DATABASE_URL"},
				Usage: "also check the role the dashboard connects as (keapsync_dashboard)"},
			&cli.Int64Flag{Name: "max-slot-lag-mib", Value: 1024, EnvVars: []string{"KEAPSYNC_MAX_SLOT_LAG_MIB"}, Usage: "retained WAL that counts as a pile-up"}},
		Action: func(c *cli.Context) error {
			pool, err := openPool(c.Context, c)
			if err != nil {
				if why := doctor.CheckConnection(c.Context, c.String(databaseURLFlag.Name), nil); why != nil {
					return fmt.Errorf("%w\n  (%v)", why, err)
				}
				return err
			}
			defer pool.Close()
			mig, err := migrate.Embedded(nil)
			if err != nil {
				return err
			}
			apiURL, err := checkURL(apiURLFlag, c.String(apiURLFlag.Name))
			if err != nil {
				return err
			}
			findings := doctor.Run(c.Context, pool, doctor.Config{Migrations: mig.Migrations, APIURL: apiURL, DatabaseURL: c.String(databaseURLFlag.Name),
				MaxSlotLag: c.Int64("max-slot-lag-mib") << 20})
			if u := c.String("dashboard-database-url"); u != "" {
				findings = append(findings, checkDashboardURL(c.Context, u))
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
			failed := 0
			for _, f := range findings {
				fmt.Fprintf(w, "%s\t%s\t%s\n", f.Level, f.Check, f.Detail)
				if f.Fix != "" {
					fmt.Fprintf(w, "\t\t-> %s\n", f.Fix)
				}
				if f.Level == doctor.Fail {
					failed++
				}
			}
			w.Flush()
			if failed > 0 {
				return errors.New(fmt.Sprint(failed, " problem(s) need attention"))
			}
			return nil
		},
	}
}

func checkDashboardURL(ctx context.Context, dbURL string) doctor.Finding {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return doctor.Finding{Check: "dashboard role", Level: doctor.Fail, Detail: "connect: " + err.Error(), Fix: "check --dashboard-database-url"}
	}
	defer conn.Close(ctx)
	return doctor.CheckDashboardRole(ctx, conn)
}
