package main

import (
	"context"
	"fmt"
	"io"

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
					cfg, err := settings(c, readInstallConfig)
					if err != nil {
						return err
					}
					return runInstall(c.App.Writer, cfg)
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
					cfg, err := settings(c, readUninstallConfig)
					if err != nil {
						return err
					}
					return runUninstall(c.Context, c.App.Writer, cfg)
				},
			},
		},
	}
}

// installConfig is what `keapsync supabase install` reads.
type installConfig struct {
	Workdir string // the Supabase project folder
}

func readInstallConfig(c *cli.Context) (installConfig, error) {
	return installConfig{Workdir: c.String(workdirFlag.Name)}, nil
}

// Validate: nothing to check before Vendor, which names a folder that is no Supabase project.
func (i *installConfig) Validate() error { return nil }

func runInstall(w io.Writer, cfg installConfig) error {
	m, err := migrate.Embedded(nil)
	if err != nil {
		return err
	}
	in, err := m.Vendor(cfg.Workdir)
	if err != nil {
		return err
	}
	for _, r := range in.Renamed {
		fmt.Fprintf(w, "renamed %s\n", r)
	}
	for _, f := range in.Written {
		fmt.Fprintf(w, "wrote %s\n", f)
	}
	fmt.Fprintf(w, "%s: %d keapsync migrations written, %d already there\n", in.Dir, len(in.Written), in.Current)
	fmt.Fprintf(w, "next: %s\n", in.NextCommand(cfg.Workdir))
	if in.IncludeAll {
		fmt.Fprintln(w, "  (--include-all: your project has migrations newer than keapsync's, so the CLI must apply older pending files too)")
	}
	fmt.Fprintln(w, "  (add --db-url '<direct connection URL>' if the project is not linked; keapsync migrate records the same history)")
	return nil
}

// uninstallConfig is what `keapsync supabase uninstall` reads.
type uninstallConfig struct {
	// DatabaseURL may be empty: the connection then follows libpq's PG* variables.
	DatabaseURL string
	Remove      migrate.UninstallConfig // the publication and slot to drop
	Workdir     string
	WorkdirSet  bool // --workdir was given (without --remove-files, say that the files stay)
	RemoveFiles bool
}

func readUninstallConfig(c *cli.Context) (uninstallConfig, error) {
	return uninstallConfig{DatabaseURL: c.String(databaseURLFlag.Name),
		Remove:  migrate.UninstallConfig{Publication: c.String(pushPublicationFlag.Name), Slot: c.String(pushSlotFlag.Name)},
		Workdir: c.String(workdirFlag.Name), WorkdirSet: c.IsSet(workdirFlag.Name), RemoveFiles: c.Bool("remove-files")}, nil
}

// Validate: nothing to check before connecting; Uninstall names what it keeps and why.
func (u *uninstallConfig) Validate() error { return nil }

func runUninstall(ctx context.Context, w io.Writer, cfg uninstallConfig) error {
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return &connectError{err} // one line, as every command says it
	}
	defer conn.Close(ctx)
	m, err := migrate.Embedded(nil)
	if err != nil {
		return err
	}
	removed, kept, err := m.Uninstall(ctx, conn, cfg.Remove)
	for _, r := range removed {
		fmt.Fprintf(w, "removed %s\n", r)
	}
	for _, k := range kept {
		fmt.Fprintf(w, "kept %s\n", k)
	}
	if err != nil {
		return err
	}
	if cfg.RemoveFiles {
		files, err := m.Unvendor(cfg.Workdir)
		for _, f := range files {
			fmt.Fprintf(w, "removed %s\n", f)
		}
		if err != nil {
			return err
		}
	} else if cfg.WorkdirSet {
		fmt.Fprintln(w, "kept keapsync's files in supabase/migrations (pass --remove-files, or supabase db push installs it again)")
	}
	fmt.Fprintln(w, "keapsync uninstalled")
	return nil
}
