package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
			cfg, err := settings(c, readDoctorConfig)
			if err != nil {
				return err
			}
			return runDoctor(c.Context, c.App.Writer, cfg)
		},
	}
}

// doctorConfig is what `keapsync doctor` reads.
type doctorConfig struct {
	DB     dbSettings
	APIURL string
	// DashboardDatabaseURL, when set, is also checked as the dashboard's role.
	DashboardDatabaseURL string
	MaxSlotLag           int64 // bytes of retained WAL that count as a pile-up
}

func readDoctorConfig(c *cli.Context) (doctorConfig, error) {
	return doctorConfig{DB: readDBSettings(c), APIURL: c.String(apiURLFlag.Name),
		DashboardDatabaseURL: c.String("dashboard-database-url"), MaxSlotLag: c.Int64("max-slot-lag-mib") << 20}, nil
}

// Validate: the database URL is required and the API URL must be one (trimmed of its "/").
func (d *doctorConfig) Validate() error {
	if err := d.DB.Validate(); err != nil {
		return err
	}
	var err error
	d.APIURL, err = checkURL(apiURLFlag, d.APIURL)
	return err
}

func runDoctor(ctx context.Context, out io.Writer, cfg doctorConfig) error {
	pool, err := openPoolURL(ctx, cfg.DB.DatabaseURL)
	if err != nil {
		if why := doctor.CheckConnection(ctx, cfg.DB.DatabaseURL, nil); why != nil {
			return fmt.Errorf("%w\n  (%v)", why, err)
		}
		return err
	}
	defer pool.Close()
	mig, err := migrate.Embedded(nil)
	if err != nil {
		return err
	}
	findings := doctor.Run(ctx, pool, doctor.Config{Migrations: mig.Migrations, APIURL: cfg.APIURL, DatabaseURL: cfg.DB.DatabaseURL,
		MaxSlotLag: cfg.MaxSlotLag})
	if u := cfg.DashboardDatabaseURL; u != "" {
		findings = append(findings, checkDashboardURL(ctx, u))
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
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
}

func checkDashboardURL(ctx context.Context, dbURL string) doctor.Finding {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return doctor.Finding{Check: "dashboard role", Level: doctor.Fail, Detail: "connect: " + err.Error(), Fix: "check --dashboard-database-url"}
	}
	defer conn.Close(ctx)
	return doctor.CheckDashboardRole(ctx, conn)
}
