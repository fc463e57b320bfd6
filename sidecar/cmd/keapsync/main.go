// Command keapsync is the two-way sync sidecar between Keap and a Supabase (PostgreSQL) database.
// Flags and environment are read here and nowhere else; every subcommand hands a validated config
// to the package that does the work.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signalContext()
	defer stop()
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "keapsync:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "keapsync",
		Usage:   "two-way sync between Keap and Supabase/PostgreSQL",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"KEAPSYNC_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"KEAPSYNC_LOG_FORMAT"}, Usage: "text or json"},
		},
		Commands: []*cli.Command{
			migrateCommand(),
			demoCommand(),
			keygenCommand(),
			authCommand(),
			backfillCommand(),
			reconcileCommand(),
			hooksCommand(),
			serveCommand(),
			doctorCommand(),
			dashboardCommand(),
			conflictsCommand(),
			deadLettersCommand(),
			rollbackCommand(),
			sandboxCommand(),
		},
	}
}

// newLogger builds the process logger from the global flags.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format: want text or json, got %q", c.String("log-format"))
	}
}
