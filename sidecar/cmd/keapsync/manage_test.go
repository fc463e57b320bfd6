package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/dashboard"
	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/supabase"
)

// demoSeededURL is a database holding the demo seed and an open conflict over its contact 1001
// ("Here" locally, "There" in Keap). The seed (1,200 contacts) loads once per package run.
func demoSeededURL(t *testing.T) string {
	t.Helper()
	return pgtest.Seeded(t, "demo", func(ctx context.Context, url string) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, supabase.Seed); err != nil {
			return fmt.Errorf("demo seed: %w", err)
		}
		return dashboard.SeedDemoConflict(ctx, pool, dashboard.DemoAccountID, 1001, "Here", "There")
	})
}

// conflicts, deadletters and rollback do from the CLI what the dashboard does, through the same
// SQL functions.
func TestConflictDeadLetterAndRollbackCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := demoSeededURL(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `insert into keapsync.dead_letters (account_id, source, object_type, keap_id, error, http_status)
	    values ($1, 'push', 'contact', 1001, 'Invalid email', 400)`, dashboard.DemoAccountID); err != nil {
		t.Fatal(err)
	}
	// run inserts --database-url after the command words (urfave/cli wants flags before
	// positional arguments, so callers put their flags first and ids last).
	run := func(want string, words int, args ...string) string {
		t.Helper()
		full := append(append(append([]string{}, args[:words]...), "--database-url", url), args[words:]...)
		out, err := runApp(t, full...)
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("keapsync %s: %v\n%s", strings.Join(full, " "), err, out)
		}
		return out
	}
	out := run(`"Here"`, 2, "conflicts", "list")
	if !strings.Contains(out, `"There"`) || !strings.Contains(out, "given_name") {
		t.Errorf("conflicts list:\n%s", out)
	}
	var id string
	_ = pool.QueryRow(ctx, `select id::text from keapsync.conflicts where status = 'open'`).Scan(&id)
	run("resolved (value)", 2, "conflicts", "resolve", "--value", "Both", id)
	run("none", 2, "conflicts", "list")
	var name string
	_ = pool.QueryRow(ctx, `select given_name from keap.contacts where account_id = $1 and keap_id = 1001`, dashboard.DemoAccountID).Scan(&name)
	if name != "Both" {
		t.Errorf("given_name after resolve = %q", name)
	}
	if _, err := runApp(t, "conflicts", "resolve", "--database-url", url, "--keep", "keap", id); err == nil {
		t.Error("resolving a settled conflict again succeeded")
	}

	run("Invalid email", 2, "deadletters", "list")
	_ = pool.QueryRow(ctx, `select id::text from keapsync.dead_letters`).Scan(&id)
	run("queued for retry", 2, "deadletters", "retry", id)
	run("discarded", 2, "deadletters", "discard", id)
	run("none", 2, "deadletters", "list")

	_ = pool.QueryRow(ctx, `select max(id)::text from keapsync.change_history where keap_id = 1001 and op = 'update'`).Scan(&id)
	run("rolled back", 1, "rollback", id)
}
