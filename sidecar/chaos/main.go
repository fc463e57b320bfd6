// Command chaos is the seeded convergence soak of issue 8: a Keap-side actor and a local SQL
// actor edit an overlapping set of contacts while faults are injected (Keap 5xx, latency, 429
// storms, dropped/duplicated/reordered hooks, an expired access token, SIGKILLed `keapsync
// serve` processes, a Postgres restart, a second serve taking over). Then faults stop, the
// system quiesces, one `keapsync reconcile --deletes` runs, and a checker compares Keap (the
// sandbox) with Postgres record by record and field by field.
//
//	go run ./sidecar/chaos -seed 7 -duration 2m
//
// The seed fixes the sandbox data, the fault plan and every choice the actors make. It cannot
// fix the interleaving of real processes and goroutines, so a seed replays the same scenario,
// not the same nanosecond schedule; a failure prints the command that replays its scenario.
//
// How the checker judges (approximations on purpose):
//   - Divergence: Keap's snapshot and keap.contacts compared by Keap id, field by field (names,
//     job title, first email and phone, custom fields, tags); fields parked as open conflicts
//     are listed apart. Duplicates: two Keap contacts with one email, or two local rows.
//   - Lost updates: each actor is one goroutine, so each side's writes are exactly ordered. A
//     field only one side wrote must end at that side's last write; a field both wrote must end
//     at one of the two last writes. Which one is not predicted: newest_wins compares Postgres
//     now() of the local edit with Keap's record-level last_updated at apply time (two clocks,
//     and the sandbox clock jumps 25 h to expire the token), which the harness cannot replay.
//   - Echo: a successful write call naming a contact the local actor never wrote or deleted.
//   - Deletes: a contact either side deleted must be gone from both, and its email from Keap.
//
// Engine bugs this soak found (it fails on them; details in the report it prints):
//   - Pool starvation deadlock: push workers keep their claim connection while the Keap call
//     needs a second one (token load in keapauth, account lookup in keapClients.For under its
//     mutex); with 4 workers and pgxpool's default MaxConns of 4 a serve that starts with a
//     backlog stops for good, /healthz still 200. -pool-max-conns 20 runs the soak past it.
//   - Create/import race: a push create Keap accepted whose markCreated never committed (the
//     Postgres restart: "conn closed") is imported by the hook as a second local row; the retry
//     upserts by email, finds the same Keap id, and mark_pushed fails on
//     contacts_account_id_keap_id_key forever.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var cfg Config
	flag.Int64Var(&cfg.Seed, "seed", 1, "seed for data, fault plan and actor choices")
	flag.DurationVar(&cfg.Duration, "duration", 2*time.Minute, "how long the actors run with faults on")
	flag.IntVar(&cfg.Contacts, "contacts", 200, "contacts the sandbox starts with")
	flag.Float64Var(&cfg.Rate, "rate", 8, "operations per second per actor")
	flag.DurationVar(&cfg.Quiesce, "quiesce", 4*time.Minute, "bound on waiting for inbox and push queue to drain")
	flag.BoolVar(&cfg.Verbose, "v", false, "log harness steps")
	flag.StringVar(&cfg.Bin, "bin", "", "a prebuilt keapsync binary (default: go build one)")
	flag.IntVar(&cfg.PoolMaxConns, "pool-max-conns", 0, "pool_max_conns for the serve processes (0: pgxpool's default)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelWarn
	if cfg.Verbose {
		level = slog.LevelInfo
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	rep, err := Run(ctx, cfg)
	if rep != nil {
		rep.Print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
	}
	if err != nil || rep == nil || !rep.OK() {
		fmt.Fprintf(os.Stderr, "reproduce with: %s\n", cfg.Command())
		os.Exit(1)
	}
}

// Config is one soak.
type Config struct {
	Seed     int64
	Duration time.Duration
	Contacts int
	Rate     float64       // actor operations per second, each
	Quiesce  time.Duration // bound on draining after the faults stop
	Verbose  bool
	Bin      string // prebuilt keapsync binary; built when empty
	// PoolMaxConns, when set, is added to serve's database URL (pool_max_conns): a way to run
	// the soak past the keapClients.For deadlock, which needs the default pool size to show.
	PoolMaxConns int
	Log          *slog.Logger
}

// Command is the command line that replays this soak's scenario.
func (c Config) Command() string {
	cmd := fmt.Sprintf("go run ./sidecar/chaos -seed %d -duration %s -contacts %d -rate %g",
		c.Seed, c.Duration, c.Contacts, c.Rate)
	if c.PoolMaxConns > 0 {
		cmd += fmt.Sprintf(" -pool-max-conns %d", c.PoolMaxConns)
	}
	return cmd
}

func (c *Config) defaults() {
	if c.Contacts == 0 {
		c.Contacts = 200
	}
	if c.Rate == 0 {
		c.Rate = 8
	}
	if c.Quiesce == 0 {
		c.Quiesce = 4 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}
