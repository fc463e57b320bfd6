// Command chaos is the seeded convergence soak of issue 8: a Keap-side actor and a local SQL
// actor edit an overlapping set of contacts and orders while faults are injected (Keap 5xx,
// latency, 429 storms, dropped/duplicated/reordered hooks, an expired access token, SIGKILLed
// `keapsync` processes, a Postgres restart, a second serve taking over). Then faults stop, the
// system quiesces, one `keapsync reconcile --deletes` runs, and a checker compares Keap (the
// sandbox) with Postgres record by record and field by field.
//
//	go run ./sidecar/devtools/chaos -seed 7 -duration 2m     (make chaos SEED=7 DURATION=2m)
//
// `make test` runs TestChaosShort: seed 1, 90 s of chaos, about two minutes in all, bounded by a
// deadline that fails it with its report rather than hang. Children die with the harness
// (Pdeathsig; the Postgres cluster has its own watchdog).
//
// The seed fixes the sandbox data, the fault plan and every choice the actors make. It cannot
// fix the interleaving of real processes and goroutines, so a seed replays the same scenario,
// not the same nanosecond schedule; a failure prints the command that replays its scenario.
//
// Where the SIGKILLs land: every Keap client process (the backfill, each serve) talks to Keap
// through its own tap (tap.go), which counts what it has in flight and can hold one call. Three
// kills are deliberate: the first backfill dies while a read of a later object type is held
// (tags are checkpointed, the rest is not) and is run again to the end; after the token expires,
// the serve whose refresh is out dies with it held before Keap saw it (the token row locked);
// and a serve dies holding Keap's answer to a push it sent (Keap did it, the write-back is
// lost). The report says where each kill landed (mid-backfill, mid-refresh, mid-push, mid-read,
// idle) and fails if a deliberate kill found nothing to land on.
//
// How the checker judges (approximations on purpose):
//   - Divergence: Keap's snapshot and keap.contacts compared by Keap id, field by field (names,
//     job title, first email and phone, custom fields, tags); fields parked as open conflicts
//     are listed apart. Orders likewise: existence, contact, title, type, date, status, totals.
//     A local order Keap refused because its contact is gone is listed with its dead letter.
//   - Duplicates: two Keap contacts with one email, or two local rows; an actor's order title
//     twice on either side.
//   - Lost updates: each actor is one goroutine, so each side's writes are exactly ordered. A
//     field only one side wrote must end at that side's last write; a field both wrote must end
//     at one of the two last writes. Which one is not predicted: newest_wins compares Postgres
//     now() of the local edit with Keap's record-level last_updated at apply time (two clocks,
//     and the sandbox clock jumps 25 h to expire the token), which the harness cannot replay.
//     An order created and never deleted must exist.
//   - Echo: a successful write call naming a contact the local actor never wrote or deleted, or
//     an order it never deleted, among the records the Keap actor knows; more order creates
//     than local inserts.
//   - Deletes: a contact or order either side deleted must be gone from both, and a deleted
//     contact's email (an order's title) from Keap.
//
// Engine bugs this soak found, all fixed since (the report names any it recognises again):
//   - Pool starvation deadlock: push workers held their claim connection while the Keap call
//     needed a second one; with pgxpool's default of 4 connections a serve that started with a
//     backlog stopped for good (d5f1e78: a pool of 20; -pool-max-conns tries other sizes).
//   - Create/import twin: a create Keap took whose write-back was lost was imported by its hook
//     as a second row, and the retry's mark_pushed failed on it forever (d5f1e78).
//   - Orders: Keap's answer to a create lacks order_type, and applying it cleared the pushed
//     order type for good (9a2a31a: the order is read back).
//   - Lost update: an update Keap took whose answer was lost came back with its hook as an edit
//     made in Keap and won its conflict against a newer local edit (3e76441: push_queue.sent).
//   - Delete undone: a record deleted here before its create's answer was recorded stayed in
//     Keap, and its hook imported it back (0c319db).
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
	flag.IntVar(&cfg.PoolMaxConns, "pool-max-conns", 0, "pool_max_conns for the serve processes (0: serve's default)")
	flag.StringVar(&cfg.Profile, "profile", "", "sandbox profile: where Keap's documents are silent, which answer it gives (documented, hardest)")
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
	// PoolMaxConns, when set, is added to serve's database URL (pool_max_conns): a small pool
	// shows whether the workers can still starve it (see the package doc).
	PoolMaxConns int
	// Profile names the sandbox profile (sandbox.ProfileNames): which answer Keap gives where its
	// documents are silent. Empty: "documented".
	Profile string
	Log     *slog.Logger
}

// Command is the command line that replays this soak's scenario.
func (c Config) Command() string {
	cmd := fmt.Sprintf("go run ./sidecar/devtools/chaos -seed %d -duration %s -contacts %d -rate %g",
		c.Seed, c.Duration, c.Contacts, c.Rate)
	if c.PoolMaxConns > 0 {
		cmd += fmt.Sprintf(" -pool-max-conns %d", c.PoolMaxConns)
	}
	if c.Profile != "" {
		cmd += " -profile " + c.Profile
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
