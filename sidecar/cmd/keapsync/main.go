// Command keapsync is the two-way sync sidecar between Keap and a Supabase (PostgreSQL) database.
// Flags and environment are read here and nowhere else; every subcommand hands a validated config
// to the package that does the work.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signalContext()
	defer stop()
	app := newApp()
	if err := run(ctx, app, os.Args); err != nil {
		os.Exit(1)
	}
}

// run runs the CLI on args and prints a failure as one line (the whole error with
// --log-level debug). Flags may follow positional arguments (`conflicts resolve 1 --keep keap`).
func run(ctx context.Context, app *cli.App, args []string) error {
	err := app.RunContext(ctx, intersperse(app, args))
	if err != nil {
		line, detail := oneLine(err)
		fmt.Fprintln(app.ErrWriter, "keapsync:", line)
		if debugRequested(args) && detail != line {
			fmt.Fprintln(app.ErrWriter, "keapsync: detail:", detail)
		}
	}
	return err
}

// debugRequested: --log-level debug (or KEAPSYNC_LOG_LEVEL=debug) asks for an error's details.
func debugRequested(args []string) bool {
	for i, a := range args {
		if a == "--log-level=debug" || a == "--log-level" && i+1 < len(args) && args[i+1] == "debug" {
			return true
		}
	}
	return os.Getenv("KEAPSYNC_LOG_LEVEL") == "debug"
}

func newApp() *cli.App {
	app := &cli.App{
		Name:    "keapsync",
		Usage:   "two-way sync between Keap and Supabase/PostgreSQL",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"KEAPSYNC_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"KEAPSYNC_LOG_FORMAT"}, Usage: "text or json"},
		},
		Action: unknownCommand,
		Commands: []*cli.Command{
			migrateCommand(),
			supabaseCommand(),
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
			pruneCommand(),
			sandboxCommand(),
			historyCommand(),
		},
	}
	app.ErrWriter = os.Stderr
	guardUnknownSubcommands(app.Commands)
	ownFlags(app.Commands)
	return app
}

// ownFlags gives every command of this app flags of its own. The flags are package variables,
// and urfave/cli writes into a flag as it parses (the environment's value becomes the flag's
// value and default): shared, one app's environment would outlive it as the next app's default,
// and apps running at once in one process (the tests) would write the same flags at once.
func ownFlags(cmds []*cli.Command) {
	for _, cmd := range cmds {
		own := make([]cli.Flag, len(cmd.Flags))
		for i, f := range cmd.Flags {
			v := reflect.ValueOf(f).Elem() // every cli flag is a pointer to a struct
			c := reflect.New(v.Type())
			c.Elem().Set(v)
			own[i] = c.Interface().(cli.Flag)
		}
		cmd.Flags = own
		ownFlags(cmd.Subcommands)
	}
}

// unknownCommand answers a word that is no command (urfave/cli would say "No help topic").
func unknownCommand(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.ShowAppHelp(c)
	}
	return fmt.Errorf("unknown command %q (keapsync --help lists the commands)", c.Args().First())
}

// guardUnknownSubcommands gives every command with subcommands the same answer for a word that
// is none of them.
func guardUnknownSubcommands(cmds []*cli.Command) {
	for _, cmd := range cmds {
		if len(cmd.Subcommands) == 0 {
			continue
		}
		guardUnknownSubcommands(cmd.Subcommands)
		if cmd.Action != nil {
			continue
		}
		name := cmd.Name
		cmd.Action = func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.ShowSubcommandHelp(c)
			}
			return fmt.Errorf("unknown command %q for %s (keapsync %s --help lists them)", c.Args().First(), name, name)
		}
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
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format: want text or json, got %q", c.String("log-format"))
	}
}

// intersperse moves the flags that follow a command's positional arguments in front of them, as
// urfave/cli stops reading flags at the first positional one: `conflicts resolve 1 --keep keap`
// reads as `conflicts resolve --keep keap 1`. A flag's value is kept with it unless the flag is
// boolean; everything after "--" stays as it is.
func intersperse(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	cmds := app.Commands
	var flags []cli.Flag = app.Flags
	i := 1
	// The global flags and the command words come first, as they are.
	for ; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			out = append(out, a)
			if takesValue(flags, a) && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			continue
		}
		cmd := findCommand(cmds, a)
		if cmd == nil {
			break
		}
		out = append(out, a)
		cmds, flags = cmd.Subcommands, cmd.Flags
	}
	var named, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			named = append(named, a)
			if takesValue(flags, a) && i+1 < len(args) {
				i++
				named = append(named, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	return append(append(out, named...), positional...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue: the flag named by arg (-x, --x, not --x=v) reads the next argument.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
