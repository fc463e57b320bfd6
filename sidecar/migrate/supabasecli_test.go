package migrate_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/migrate"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
	"github.com/keapsync/keapsync/sql/compat"
)

// These tests drive the real Supabase CLI (pinned in .ci/supabase-cli) against a user's project
// that also holds keapsync: whichever came first, with the user's migrations older and newer
// than keapsync's, across an upgrade that adds a keapsync migration, and out again. Each ends
// with `supabase db push` and `keapsync migrate` both finding nothing to do, and no repair.

// supabaseCLI is the pinned CLI; `make test` installs it (npm ci in .ci/supabase-cli).
func supabaseCLI(t *testing.T) string {
	t.Helper()
	cli, err := filepath.Abs("../../.ci/supabase-cli/node_modules/.bin/supabase")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("the Supabase CLI is not installed: run `npm ci` in .ci/supabase-cli (make test does): %v", err)
	}
	return cli
}

// project is a user's Supabase project folder with their own migrations.
type project struct {
	t       *testing.T
	cli     string
	dir     string
	dbURL   string // as the CLI wants it: with a password and sslmode=disable
	conn    *pgx.Conn
	binary  *migrate.Migrator // the keapsync binary in use
	history []string
}

// newProject makes a Supabase-like database (the compatibility bootstrap, as on a real project)
// and an empty project folder for it.
func newProject(t *testing.T, bin *migrate.Migrator) *project {
	t.Helper()
	raw := pgtest.EmptyURL(t)
	pgtest.LockRoles(t) // each project grants to and revokes from the cluster's keapsync roles
	conn := connect(t, raw)
	if _, err := conn.Exec(context.Background(), compat.Bootstrap); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Scheme = "postgresql"
	u.User = url.UserPassword(u.User.Username(), "postgres") // trust auth; the CLI insists on one
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "supabase"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "supabase", "config.toml"), []byte("project_id = \"my_app\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &project{t: t, cli: supabaseCLI(t), dir: dir, dbURL: u.String(), conn: conn, binary: bin}
}

// addOwn writes one of the user's own migrations.
func (p *project) addOwn(version, name, sql string) {
	p.t.Helper()
	dir := filepath.Join(p.dir, migrate.ProjectMigrations)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, version+"_"+name+".sql"), []byte(sql), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// supabase runs the CLI in the project and returns what it printed; a failure fails the test.
func (p *project) supabase(args ...string) string {
	p.t.Helper()
	cmd := exec.Command(p.cli, append(args, "--workdir", p.dir, "--db-url", p.dbURL)...)
	cmd.Env = append(os.Environ(), "DO_NOT_TRACK=1", "HOME="+p.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("supabase %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// install runs `keapsync supabase install` and then the exact command it printed.
func (p *project) install() migrate.Install {
	p.t.Helper()
	in, err := p.binary.Vendor(p.dir)
	if err != nil {
		p.t.Fatal(err)
	}
	next := strings.Fields(in.NextCommand("."))
	p.supabase(append(next[1:], "--yes")...)
	return in
}

// settled: both tools find the database up to date, and the CLI asks for no repair.
func (p *project) settled() {
	p.t.Helper()
	out := p.supabase("db", "push", "--dry-run")
	if !strings.Contains(out, "Remote database is up to date") || strings.Contains(out, "repair") {
		p.t.Fatalf("supabase db push --dry-run:\n%s", out)
	}
	res, err := p.binary.Apply(context.Background(), p.conn)
	if err != nil || len(res.Applied) != 0 || res.Current != len(p.binary.Migrations) {
		p.t.Fatalf("keapsync migrate: %+v, %v; want up to date", res, err)
	}
	var timeout string
	if err := p.conn.QueryRow(context.Background(), `show lock_timeout`).Scan(&timeout); err != nil || timeout != "0" {
		p.t.Fatalf("lock_timeout after keapsync migrate: %q, %v; want the session's own 0 back", timeout, err)
	}
}

// binaries: the keapsync of the last release (all but the newest migration) and the current one.
func binaries(t *testing.T) (old, current *migrate.Migrator) {
	t.Helper()
	current, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	o := *current
	o.Migrations = current.Migrations[:len(current.Migrations)-1]
	return &o, current
}

const userTable = "create table public.my_notes (id bigint primary key, body text);"

func TestUserProjectFirstThenKeapsync(t *testing.T) {
	t.Parallel()
	old, current := binaries(t)
	p := newProject(t, old)
	p.addOwn("20250101000000", "my_app", userTable)
	p.supabase("db", "push", "--yes")
	if in := p.install(); in.IncludeAll || len(in.Written) != len(old.Migrations) {
		t.Fatalf("install = %+v; want every keapsync file written, no --include-all (the user's migration is older)", in)
	}
	p.settled()
	// The user keeps adding migrations, newer than keapsync's.
	p.addOwn("29990101000000", "my_later", "alter table public.my_notes add column seen boolean;")
	p.supabase("db", "push", "--yes")
	p.settled()
	// Upgrade: the newer binary adds one migration, older than the user's latest.
	p.binary = current
	in := p.install()
	if !in.IncludeAll || len(in.Written) != 1 {
		t.Fatalf("upgrade install = %+v; want one file written and --include-all", in)
	}
	p.settled()
	// Idempotent.
	if again, err := current.Vendor(p.dir); err != nil || len(again.Written) != 0 || again.Current != len(current.Migrations) {
		t.Fatalf("second install = %+v, %v; want nothing written", again, err)
	}
}

func TestKeapsyncFirstThenUserProject(t *testing.T) {
	t.Parallel()
	old, current := binaries(t)
	p := newProject(t, old)
	if _, err := old.Apply(context.Background(), p.conn); err != nil {
		t.Fatal(err)
	}
	// As a database migrated before keapsync's files carried its prefix would have recorded them:
	// the CLI compares versions only, so the renamed files still match.
	if _, err := p.conn.Exec(context.Background(), `update supabase_migrations.schema_migrations
	  set name = substr(name, length('keapsync_') + 1)`); err != nil {
		t.Fatal(err)
	}
	p.addOwn("20250101000000", "my_app", userTable)
	p.addOwn("29990101000000", "my_later", "alter table public.my_notes add column seen boolean;")
	// One keapsync file copied by hand under its name from before the prefix.
	first := old.Migrations[0]
	p.addOwn(first.Version, strings.TrimPrefix(first.Name, migrate.Prefix), first.SQL)
	if in := p.install(); !in.IncludeAll || len(in.Written) != len(old.Migrations)-1 || len(in.Renamed) != 1 {
		t.Fatalf("install = %+v; want the hand-copied file renamed, every other keapsync file written and --include-all", in)
	}
	p.settled()
	p.binary = current
	if in := p.install(); !in.IncludeAll || len(in.Written) != 1 {
		t.Fatalf("upgrade install = %+v; want one file written and --include-all", in)
	}
	// keapsync migrate applies an upgrade just as well; here the push did it.
	p.settled()
}

// An edited keapsync file is named and nothing is written; a newer keapsync's file asks for an upgrade.
func TestInstallRefusesEditedOrNewerFiles(t *testing.T) {
	t.Parallel()
	old, current := binaries(t)
	dir := t.TempDir()
	mdir := filepath.Join(dir, migrate.ProjectMigrations)
	if _, err := current.Vendor(dir); err == nil {
		t.Fatal("install into a folder without supabase/config.toml succeeded")
	}
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "supabase", "config.toml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := current.Vendor(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Vendor(dir); err == nil || !strings.Contains(err.Error(), current.Migrations[len(current.Migrations)-1].File) ||
		!strings.Contains(err.Error(), "upgrade keapsync") {
		t.Fatalf("an older binary over a newer install: %v; want a refusal naming the newer file", err)
	}
	edited := filepath.Join(mdir, current.Migrations[3].File)
	if err := os.WriteFile(edited, []byte("-- mine now\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	removedOne := filepath.Join(mdir, current.Migrations[5].File)
	if err := os.Remove(removedOne); err != nil {
		t.Fatal(err)
	}
	if _, err := current.Vendor(dir); err == nil || !strings.Contains(err.Error(), edited) {
		t.Fatalf("install over an edited file: %v; want a refusal naming %s", err, edited)
	}
	if _, err := os.Stat(removedOne); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused install wrote files anyway")
	}
}

// Uninstall removes keapsync and nothing of the user's; installing again gives what a fresh
// install gives.
func TestUninstallThenReinstallEqualsFreshInstall(t *testing.T) {
	t.Parallel()
	_, current := binaries(t)
	ctx := context.Background()
	p := newProject(t, current)
	p.addOwn("20250101000000", "my_app", userTable)
	p.install()
	p.settled()
	exec := func(sql string) {
		t.Helper()
		if _, err := p.conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`insert into public.my_notes values (1, 'mine')`)
	exec(`select pg_create_logical_replication_slot('keapsync_push', 'pgoutput')`)
	exec(`create view public.my_contacts as select id from keap.contacts`)

	_, _, err := current.Uninstall(ctx, p.conn, migrate.UninstallConfig{})
	var deps *migrate.DependentsError
	if !errors.As(err, &deps) || !strings.Contains(err.Error(), "public.my_contacts") {
		t.Fatalf("uninstall under a dependent view: %v; want a refusal naming it", err)
	}
	exec(`drop view public.my_contacts`)
	removed, kept, err := current.Uninstall(ctx, p.conn, migrate.UninstallConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("removed %q, kept %q", removed, kept)
	for _, want := range []string{"publication keapsync_push", "replication slot keapsync_push", "schema keap and everything in it",
		"schema keapsync and everything in it", "policy keapsync_members_receive on realtime.messages"} {
		if !strings.Contains(strings.Join(removed, "\n"), want) {
			t.Errorf("uninstall did not report removing %s", want)
		}
	}
	var left, notes, userRows int
	if err := p.conn.QueryRow(ctx, `select (select count(*) from pg_namespace where nspname in ('keap', 'keapsync'))
	    + (select count(*) from pg_publication where pubname = 'keapsync_push') + (select count(*) from pg_replication_slots where slot_name = 'keapsync_push')
	    + (select count(*) from supabase_migrations.schema_migrations where name like 'keapsync%'),
	  (select count(*) from public.my_notes), (select count(*) from supabase_migrations.schema_migrations where name = 'my_app')`).Scan(&left, &notes, &userRows); err != nil {
		t.Fatal(err)
	}
	if left != 0 || notes != 1 || userRows != 1 {
		t.Fatalf("after uninstall: %d keapsync objects left, %d user rows, %d user history rows; want 0, 1, 1", left, notes, userRows)
	}
	files, err := current.Unvendor(p.dir)
	if err != nil || len(files) != len(current.Migrations) {
		t.Fatalf("remove files: %d removed, %v", len(files), err)
	}
	// The user's project alone is up to date.
	if out := p.supabase("db", "push", "--dry-run"); !strings.Contains(out, "Remote database is up to date") {
		t.Fatalf("after uninstall, supabase db push --dry-run:\n%s", out)
	}

	p.install()
	p.settled()
	fresh := newProject(t, current)
	fresh.addOwn("20250101000000", "my_app", userTable)
	fresh.install()
	fresh.settled()
	if a, b := schemaDump(t, p.dbURL), schemaDump(t, fresh.dbURL); a != b {
		t.Errorf("reinstalled schema differs from a fresh install:\n%s", firstDifference(a, b))
	}
	history := `select string_agg(version || ' ' || name || ' ' || array_length(statements, 1), E'\n' order by version)
	  from supabase_migrations.schema_migrations`
	var h1, h2 string
	if err := p.conn.QueryRow(ctx, history).Scan(&h1); err != nil {
		t.Fatal(err)
	}
	if err := fresh.conn.QueryRow(ctx, history).Scan(&h2); err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Errorf("reinstalled history differs from a fresh install:\n%s\n---\n%s", h1, h2)
	}
}

func schemaDump(t *testing.T, dbURL string) string {
	t.Helper()
	bin, err := pgcluster.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--schema-only", "--dbname", dbURL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, `\restrict`) && !strings.HasPrefix(l, `\unrestrict`) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func firstDifference(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return "line " + la[i] + "\n  vs " + lb[i]
		}
	}
	return "one dump is a prefix of the other"
}
