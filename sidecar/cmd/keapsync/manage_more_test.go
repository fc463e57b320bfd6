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

// Each of these stops before any work, with a line that names what is wrong and, where there is
// one, what to do.
func TestRefusalsNameTheProblem(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	oauth := []string{"--database-url", url, "--client-id", "c", "--client-secret-file", secretFile(t, "s"),
		"--secret-key-file", secretFile(t, testKey), "--api-url", "http://127.0.0.1:1/crm/rest"}
	run := func(args ...string) string { t.Helper(); return printedError(t, args...) }
	for _, tc := range []struct {
		line string
		args []string
	}{
		{"no account yet: run keapsync auth login (or set KEAP_API_KEY)", append([]string{"backfill", "--objects", "tags,,contacts"}, oauth...)},
		{`no account "nosuch.example" (give an account id or tenant`, append([]string{"backfill", "--account", "nosuch.example"}, oauth...)},
		{"DATABASE_URL: not a PostgreSQL URL or connection string", []string{"backfill", "--database-url", "postgres://[::1", "--api-key-file", secretFile(t, "k")}},
		{"KEAP_AUTH_URL: not a URL", append([]string{"backfill", "--auth-url", "accounts.example"}, oauth...)},
		{"KEAPSYNC_SECRET_KEY: key 1 has", []string{"auth", "revoke", "--account", "x", "--database-url", url, "--client-id", "c",
			"--client-secret-file", secretFile(t, "s"), "--secret-key-file", secretFile(t, "c2hvcnQ=")}},
		{"--log-level: ", []string{"--log-level", "loud", "serve", "--database-url", url}},
		{"is not a Supabase project (no supabase/config.toml)", []string{"supabase", "install", "--workdir", t.TempDir()}},
		{"store connect link: ", []string{"auth", "link", "--public-url", "https://sync.example.com", "--database-url", pgtest.EmptyURL(t)}},
		{`no account "nosuch.example" (give an account id or tenant`, append([]string{"hooks", "list", "--account", "nosuch.example", "--public-url", "https://sync.example.com"}, oauth...)},
		{"connect to database (DATABASE_URL): dial tcp 127.0.0.1:1: ", []string{"hooks", "list", "--public-url", "https://sync.example.com",
			"--database-url", "postgres://postgres@127.0.0.1:1/x?sslmode=disable", "--api-key-file", secretFile(t, "k")}},
		{"connect to database (DATABASE_URL): dial tcp 127.0.0.1:1: ", []string{"backfill",
			"--database-url", "postgres://postgres@127.0.0.1:1/x?sslmode=disable", "--api-key-file", secretFile(t, "k")}},
		{"--log-level: ", []string{"--log-level", "loud", "hooks", "list", "--database-url", url}},
		{"--log-level: ", []string{"--log-level", "loud", "backfill", "--database-url", url}},
		{"inspect database: permission denied for schema auth", []string{"migrate", "--database-url", asRole(t, url, "keapsync_sidecar")}},
		{"connect to database (DATABASE_URL): dial tcp 127.0.0.1:1: ", []string{"doctor", "--database-url", "postgres://postgres@127.0.0.1:1/x?sslmode=disable"}},
		{"--supabase-jwt-secret", []string{"dashboard", "--local", "--supabase-jwt-secret", "s", "--database-url", url}},
		{"nosuch", []string{"sandbox", "--profile", "nosuch"}},
		{"connect to database (DATABASE_URL): dial tcp 127.0.0.1:1: ", []string{"--log-format", "json", "dashboard", "--local", "--database-url", "postgres://postgres@127.0.0.1:1/x?sslmode=disable"}},
	} {
		if line := run(tc.args...); !strings.Contains(line, tc.line) {
			t.Errorf("keapsync %s: %s, want %q", strings.Join(tc.args, " "), line, tc.line)
		}
	}
	// An account that exists but cannot sync (never connected) is skipped, and with nothing
	// left to run the command fails saying so.
	if _, err := pool.Exec(context.Background(), `insert into keapsync.accounts (name, keap_tenant) values ('N', 'n.example')`); err != nil {
		t.Fatal(err)
	}
	out, err := runApp(t, append([]string{"backfill"}, oauth...)...)
	if err == nil || err.Error() != "backfill: no account can sync (see above)" || !strings.Contains(out, "backfill n.example: skipped: ") {
		t.Errorf("backfill with only a never-connected account: %v\n%s", err, out)
	}
	// A view of the user's on keapsync's tables stops supabase uninstall, naming it.
	if _, err := pool.Exec(context.Background(), `create view public.my_accounts as select id from keapsync.accounts`); err != nil {
		t.Fatal(err)
	}
	if out, err := runApp(t, "supabase", "uninstall", "--database-url", url); err == nil || !strings.Contains(out, "public.my_accounts") {
		t.Errorf("supabase uninstall under a dependent view: %v\n%s", err, out)
	}
}
