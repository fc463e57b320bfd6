package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/migrate"
)

// Commands that name an account by tenant: auth status before any account (and with a personal
// key set), conflicts resolve --policy, history --account; an unknown tenant is named.
func TestAccountByTenantCommands(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	out, err := runApp(t, "auth", "status", "--database-url", url, "--api-key-file", secretFile(t, "personal-key"))
	if err != nil || !strings.Contains(out, "no accounts yet: run keapsync auth login") ||
		!strings.Contains(out, "a personal access key is configured (KEAP_API_KEY)") {
		t.Errorf("auth status without accounts: %v\n%s", err, out)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), `insert into keapsync.accounts (name, keap_tenant, credential) values ('H', 'h.example', 'api_key')`); err != nil {
		t.Fatal(err)
	}
	if out, err := runApp(t, "conflicts", "resolve", "--account", "h.example", "--policy", "keap_wins", "--database-url", url); err != nil ||
		strings.TrimSpace(out) != "resolved 0 conflicts by keap_wins" {
		t.Errorf("conflicts resolve --policy: %v\n%s", err, out)
	}
	if line := printedError(t, "conflicts", "resolve", "--account", "nosuch.example", "--policy", "keap_wins", "--database-url", url); line !=
		`keapsync: no account "nosuch.example" (give an account id or tenant; see keapsync auth status)` {
		t.Errorf("conflicts resolve --policy for an unknown account: %s", line)
	}
	if out, err := runApp(t, "history", "--account", "h.example", "--database-url", url); err != nil || !strings.HasPrefix(out, "ID ") {
		t.Errorf("history --account: %v\n%s", err, out)
	}
	if line := printedError(t, "history", "--account", "nosuch.example", "--database-url", url); !strings.Contains(line, `"nosuch.example"`) {
		t.Errorf("history for an unknown account: %s", line)
	}
}

// supabase install tells what it did to a project with an old copy of keapsync's first file
// (renamed to keapsync's name) and migrations of its own newer than keapsync's (--include-all);
// supabase uninstall says it kept the files unless told, and names an unreachable database.
func TestSupabaseCommandsSayWhatTheyDid(t *testing.T) {
	t.Parallel()
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mdir := filepath.Join(dir, migrate.ProjectMigrations)
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	first := m.Migrations[0]
	for name, body := range map[string]string{
		"supabase/config.toml": "",
		migrate.ProjectMigrations + "/" + first.Version + "_core_schema.sql": first.SQL,
		migrate.ProjectMigrations + "/29990101000000_my_app.sql":             "create table my_notes (id int);",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runApp(t, "supabase", "install", "--workdir", dir)
	for _, want := range []string{"renamed " + first.Version + "_core_schema.sql -> " + first.File,
		"next: supabase db push --workdir " + dir + " --include-all", "(--include-all: your project has migrations newer than keapsync's"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("supabase install: %v; does not say %q\n%s", err, want, out)
		}
	}

	url := pgtest.URL(t)
	pgtest.LockRoles(t) // uninstall revokes from the cluster's keapsync roles
	out, err = runApp(t, "supabase", "uninstall", "--database-url", url, "--workdir", dir)
	if err != nil || !strings.Contains(out, "kept keapsync's files in supabase/migrations (pass --remove-files") ||
		!strings.HasSuffix(out, "keapsync uninstalled\n") {
		t.Errorf("supabase uninstall: %v\n%s", err, out)
	}
	if line := printedError(t, "supabase", "uninstall", "--database-url", "postgres://postgres@127.0.0.1:1/x?sslmode=disable"); line != "keapsync: connect to database (DATABASE_URL): dial tcp 127.0.0.1:1: connect: connection refused" {
		t.Errorf("supabase uninstall of an unreachable database: %s", line)
	}
}
