package main

import (
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/migrate"
)

var workdirFlag = &cli.StringFlag{Name: "workdir", Value: ".", Usage: "the Supabase project folder (the one holding supabase/config.toml)"}

func supabaseCommand() *cli.Command {
	return &cli.Command{
		Name:  "supabase",
		Usage: "install keapsync into a Supabase project next to its own migrations, or remove it",
		Subcommands: []*cli.Command{
			{
				Name:  "install",
				Usage: "write keapsync's migrations into the project's supabase/migrations and print the push command",
				Description: "Files are written unchanged, so `supabase db push` and `keapsync migrate` record the same history. " +
					"Safe to run again; upgrading keapsync is running it with the newer binary. A keapsync file that was edited is named and nothing is written.",
				Flags: []cli.Flag{workdirFlag},
				Action: func(c *cli.Context) error {
					m, err := migrate.Embedded(nil)
					if err != nil {
						return err
					}
					workdir := c.String("workdir")
					in, err := m.Vendor(workdir)
					if err != nil {
						return err
					}
					for _, r := range in.Renamed {
						fmt.Fprintf(c.App.Writer, "renamed %s\n", r)
					}
					for _, f := range in.Written {
						fmt.Fprintf(c.App.Writer, "wrote %s\n", f)
					}
					fmt.Fprintf(c.App.Writer, "%s: %d keapsync migrations written, %d already there\n", in.Dir, len(in.Written), in.Current)
					fmt.Fprintf(c.App.Writer, "next: %s\n", in.NextCommand(workdir))
					if in.IncludeAll {
						fmt.Fprintln(c.App.Writer, "  (--include-all: your project has migrations newer than keapsync's, so the CLI must apply older pending files too)")
					}
					fmt.Fprintln(c.App.Writer, "  (add --db-url '<direct connection URL>' if the project is not linked; keapsync migrate records the same history)")
					return nil
				},
			},
			{
				Name:  "uninstall",
				Usage: "remove keapsync from the database (publication, slot, schemas keap and keapsync, its history rows, its roles)",
				Description: "Objects of yours that depend on keapsync's are named and nothing is removed. " +
					"--remove-files also deletes keapsync's files from the project's supabase/migrations; without it `supabase db push` would install keapsync again.",
				Flags: []cli.Flag{databaseURLFlag, pushSlotFlag, pushPublicationFlag, workdirFlag,
					&cli.BoolFlag{Name: "remove-files", Usage: "also delete keapsync's migration files from the project at --workdir"}},
				Action: func(c *cli.Context) error {
					conn, err := pgx.Connect(c.Context, c.String("database-url"))
					if err != nil {
						return fmt.Errorf("connect to database: %w", err)
					}
					defer conn.Close(c.Context)
					m, err := migrate.Embedded(nil)
					if err != nil {
						return err
					}
					removed, kept, err := m.Uninstall(c.Context, conn, migrate.UninstallConfig{
						Publication: c.String("push-publication"), Slot: c.String("push-slot")})
					for _, r := range removed {
						fmt.Fprintf(c.App.Writer, "removed %s\n", r)
					}
					for _, k := range kept {
						fmt.Fprintf(c.App.Writer, "kept %s\n", k)
					}
					if err != nil {
						return err
					}
					if c.Bool("remove-files") {
						files, err := m.Unvendor(c.String("workdir"))
						for _, f := range files {
							fmt.Fprintf(c.App.Writer, "removed %s\n", f)
						}
						if err != nil {
							return err
						}
					} else if c.IsSet("workdir") {
						fmt.Fprintln(c.App.Writer, "kept keapsync's files in supabase/migrations (pass --remove-files, or supabase db push installs it again)")
					}
					fmt.Fprintln(c.App.Writer, "keapsync uninstalled")
					return nil
				},
			},
		},
	}
}
