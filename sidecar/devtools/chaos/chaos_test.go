package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// shortSoak is the soak `make test` runs: a fixed seed, every fault kind, every deliberate
// kill, 90 s of chaos and about two minutes in all. Longer and other seeds:
// `go run ./sidecar/devtools/chaos -seed N -duration D` (`make chaos`).
var shortSoak = Config{Seed: 1, Duration: 90 * time.Second, Contacts: 200, Rate: 8, Quiesce: 2 * time.Minute}

// soakBound caps the whole short soak, well inside go test's default 10 minute timeout: a soak
// that cannot finish fails with its report and the command that replays it, instead of the
// test binary being killed with nothing to show (its children die with it either way).
const soakBound = 6 * time.Minute

// The two soaks run side by side: each has its own cluster, sandbox, binaries and temp dir, and
// most of a soak's time is its actors' pace and the quiesce wait, not CPU.
func TestChaosShort(t *testing.T) {
	t.Parallel()
	soak(t, shortSoak)
}

// The same soak where Keap gives the answers hardest for us wherever its documents are silent
// (sandbox profile "hardest": whole-second stamps, exclusive since, tag changes and payments that
// leave stamps alone, tag hooks carrying tag ids without apiUrl, nulls ignored).
func TestChaosShortHardest(t *testing.T) {
	t.Parallel()
	cfg := shortSoak
	cfg.Seed, cfg.Duration, cfg.Profile = 2, 60*time.Second, "hardest"
	soak(t, cfg)
}

// TestMain removes the binary the soaks shared.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// shared is the keapsync binary both soaks run: linked once, not once per soak (a link is some
// 3 CPU-s, and the soaks run beside the rest of the suite).
var shared struct {
	once     sync.Once
	dir, bin string
	err      error
}

func sharedBinary() (string, error) {
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "keapsync-chaos-bin-"); shared.err != nil {
			return
		}
		shared.bin = filepath.Join(shared.dir, "keapsync")
		shared.err = buildKeapsync(context.Background(), shared.bin)
	})
	return shared.bin, shared.err
}

func soak(t *testing.T, cfg Config) {
	if testing.Short() {
		t.Skip("the soak takes two minutes; -short skips it (make test runs it)")
	}
	bin, err := sharedBinary()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bin = bin
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	deadline := time.Now().Add(soakBound)
	if d, ok := t.Deadline(); ok && d.Add(-30*time.Second).Before(deadline) {
		deadline = d.Add(-30 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	rep, err := Run(ctx, cfg)
	var b strings.Builder
	if rep != nil {
		rep.Print(&b)
	}
	t.Log("\n" + b.String())
	if err != nil {
		t.Fatalf("soak could not run: %v\nreproduce with: %s", err, cfg.Command())
	}
	if !rep.OK() {
		t.Fatalf("soak did not converge; reproduce with: %s", cfg.Command())
	}
}
