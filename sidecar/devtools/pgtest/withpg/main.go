// Command withpg runs a command next to a throwaway PostgreSQL cluster (wal_level=logical) and
// removes the cluster afterwards: `go run ./sidecar/devtools/pgtest/withpg -- go test ./...`. The
// command sees the cluster as KEAPSYNC_TEST_DATABASE_URL and as PGHOST/PGPORT/PGUSER, so the
// Go tests, psql and pg_prove all share one cluster per run.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

func main() {
	os.Exit(run())
}

func run() int {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withpg -- command [args...]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, cleanup, err := pgtest.StartCluster(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "withpg:", err)
		return 1
	}
	defer cleanup()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		pgtest.EnvURL+"="+c.URL("postgres"),
		"PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(c.Port), "PGUSER=postgres", "PGSSLMODE=disable")
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "withpg:", err)
		return 1
	}
	return 0
}
