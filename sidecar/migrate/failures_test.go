package migrate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/migrate"
)

// Only files named as the Supabase CLI names migrations are migrations; a folder that is not
// there is an error that says what was being read.
func TestLoadReadsOnlyMigrationFiles(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"m/002_second.sql":       {Data: []byte("select 2;")},
		"m/001_first.sql":        {Data: []byte("select 1;\nselect 11;")},
		"m/README.md":            {Data: []byte("not a migration")},
		"m/003_folder.sql/x.sql": {Data: []byte("select 3;")},
	}
	ms, err := migrate.Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].File != "001_first.sql" || ms[0].Version != "001" || ms[0].Name != "first" ||
		len(ms[0].Statements) != 2 || ms[1].File != "002_second.sql" {
		t.Errorf("loaded %+v", ms)
	}
	if _, err := migrate.Load(fsys, "missing"); err == nil || !strings.HasPrefix(err.Error(), "read migrations: ") {
		t.Errorf("a missing folder: %v", err)
	}
}

// Apply refuses, changing nothing, where it cannot do its work: a plain database with no
// bootstrap to make it Supabase-like, a bootstrap that fails, a role that may not migrate, a
// connection that is gone.
func TestApplyRefusesWhatItCannotDo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	plain := connect(t, pgtest.EmptyURL(t))
	bare := &migrate.Migrator{Migrations: m.Migrations}
	if _, err := bare.Apply(ctx, plain); err == nil || !strings.Contains(err.Error(), "no bootstrap is configured") {
		t.Errorf("a plain database without a bootstrap: %v", err)
	}
	broken := &migrate.Migrator{Migrations: m.Migrations, Bootstrap: "create table half (id int); select 1/0", BootstrapPath: "compat/bootstrap.sql"}
	if _, err := broken.Apply(ctx, plain); err == nil || !strings.HasPrefix(err.Error(), "apply bootstrap compat/bootstrap.sql: ") ||
		!strings.Contains(err.Error(), "division by zero") {
		t.Errorf("a failing bootstrap: %v", err)
	}
	var left int
	if err := plain.QueryRow(ctx, `select count(*) from pg_class where relname in ('half', 'schema_migrations')`).Scan(&left); err != nil || left != 0 {
		t.Errorf("after the failed bootstrap: %d tables left, %v", left, err)
	}

	url := pgtest.URL(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = "keapsync_sidecar" // may read and write keapsync's rows, not look into auth
	reader, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	if _, err := m.Apply(ctx, reader); err == nil || !strings.HasPrefix(err.Error(), "inspect database: ") ||
		!strings.Contains(err.Error(), "permission denied") {
		t.Errorf("a role that may not migrate: %v", err)
	}

	gone := connect(t, url)
	gone.Close(ctx)
	if _, err := m.Apply(ctx, gone); err == nil || !strings.HasPrefix(err.Error(), "inspect database: ") {
		t.Errorf("a closed connection: %v", err)
	}
}

// A failing statement is named with PostgreSQL's detail (which row broke the key), clipped to a
// line a terminal shows, and the error still unwraps to the server's for callers that check the
// SQLSTATE.
func TestStatementErrorCarriesPostgresDetail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, pgtest.URL(t)) // fully migrated
	values := strings.Repeat("(2), ", 40)
	fsys := fstest.MapFS{"m/29990101000000_mine.sql": {Data: []byte(
		"create table mine (id int primary key);\n-- a comment first\ninsert into mine values " + values + "(1), (1);\n")}}
	more, err := migrate.Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	next := &migrate.Migrator{Migrations: append(m.Migrations[:len(m.Migrations):len(m.Migrations)], more...)}
	_, err = next.Apply(ctx, conn)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("err = %v, want one that unwraps to a unique violation", err)
	}
	msg := err.Error()
	for _, want := range []string{"migration 29990101000000_mine.sql failed at statement 2", "(SQLSTATE 23505): Key (id)=(2) already exists",
		"statement: insert into mine values (2), (2)", "...\n", "(nothing from this file was applied)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
	if line := strings.Split(msg, "\n")[1]; len(line) > len("  statement: ")+120 {
		t.Errorf("statement line of %d characters: %q", len(line), line)
	}
}

// On a cluster of its own (roles belong to the cluster, and the shared test cluster has keapsync
// in many databases): uninstall refuses while serve holds the push slot, then removes keapsync's
// roles with the rest, and running it again finds nothing left to remove.
func TestUninstallOnItsOwnClusterRemovesTheRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, stop, err := pgtest.StartCluster(ctx)
	if err != nil {
		t.Fatalf("start a private cluster: %v", err)
	}
	t.Cleanup(stop)
	url := c.URL("postgres")
	conn := connect(t, url)
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `select pg_create_logical_replication_slot('keapsync_push', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	// serve's replication connection, streaming from the slot.
	repl, err := pgconn.Connect(ctx, url+"&replication=database")
	if err != nil {
		t.Fatal(err)
	}
	if err := pglogrepl.StartReplication(ctx, repl, "keapsync_push", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'keapsync_push'"}}); err != nil {
		t.Fatal(err)
	}
	var pid int32
	if err := conn.QueryRow(ctx, `select active_pid from pg_replication_slots where slot_name = 'keapsync_push'`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	_, _, err = m.Uninstall(ctx, conn, migrate.UninstallConfig{})
	if err == nil || !strings.Contains(err.Error(), "replication slot keapsync_push is held by server process") ||
		!strings.Contains(err.Error(), "stop keapsync serve first (nothing was removed)") {
		t.Fatalf("uninstall while the slot is held: %v", err)
	}
	repl.Close(ctx)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		var active bool
		if err := conn.QueryRow(ctx, `select active from pg_replication_slots where slot_name = 'keapsync_push'`).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if !active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot is still held a minute after its connection closed")
		}
	}

	removed, kept, err := m.Uninstall(ctx, conn, migrate.UninstallConfig{})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(removed, "\n")
	for _, r := range migrate.Roles {
		if !strings.Contains(all, "role "+r) {
			t.Errorf("removed %q: no role %s", removed, r)
		}
	}
	if len(kept) != 0 {
		t.Errorf("kept %q on a cluster with no other keapsync", kept)
	}
	var roles int
	if err := conn.QueryRow(ctx, `select count(*) from pg_roles where rolname = any($1)`, migrate.Roles).Scan(&roles); err != nil || roles != 0 {
		t.Errorf("%d of keapsync's roles left, %v", roles, err)
	}
	if removed, kept, err := m.Uninstall(ctx, conn, migrate.UninstallConfig{}); err != nil || len(removed)+len(kept) != 0 {
		t.Errorf("uninstalling again: removed %q, kept %q, %v; want nothing", removed, kept, err)
	}
	conn.Close(ctx)
	if _, _, err := m.Uninstall(ctx, conn, migrate.UninstallConfig{}); err == nil || !strings.HasPrefix(err.Error(), "read replication slot keapsync_push: ") {
		t.Errorf("a closed connection: %v", err)
	}
}

// What `keapsync supabase install` and `uninstall` say about a project folder they cannot use: a
// migrations "folder" that is a file, a file with keapsync's version under another name and
// content. A project without the folder has nothing to remove. The printed push command names
// the workdir it was given.
func TestVendorOnProjectsItCannotUse(t *testing.T) {
	t.Parallel()
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "supabase"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "supabase", "config.toml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if files, err := m.Unvendor(dir); err != nil || len(files) != 0 {
		t.Errorf("uninstall from a project without migrations: %q, %v", files, err)
	}
	folder := filepath.Join(dir, migrate.ProjectMigrations)
	if err := os.WriteFile(folder, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Vendor(dir); err == nil || !strings.HasPrefix(err.Error(), "read "+folder+": ") {
		t.Errorf("install where the migrations folder is a file: %v", err)
	}
	if _, err := m.Unvendor(dir); err == nil || !strings.HasPrefix(err.Error(), "read "+folder+": ") {
		t.Errorf("uninstall where the migrations folder is a file: %v", err)
	}
	if err := os.Remove(folder); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	clash := filepath.Join(folder, m.Migrations[0].Version+"_my_own.sql")
	if err := os.WriteFile(clash, []byte("create table mine (id int);"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Vendor(dir); err == nil || !strings.Contains(err.Error(), clash+" has the version of keapsync's "+m.Migrations[0].File) ||
		!strings.Contains(err.Error(), "(nothing was written)") {
		t.Errorf("install over a file of the same version: %v", err)
	}
	if got := (migrate.Install{IncludeAll: true}).NextCommand("../my-app"); got != "supabase db push --workdir ../my-app --include-all" {
		t.Errorf("NextCommand = %q", got)
	}
}

// A database a newer keapsync migrated: Pending (doctor's check) says to upgrade, as Apply does.
func TestPendingNamesANewerKeapsyncsMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, pgtest.URL(t))
	if _, err := conn.Exec(ctx, `insert into supabase_migrations.schema_migrations (version, name, statements)
	  values ('29991231000000', 'keapsync_from_the_future', '{}')`); err != nil {
		t.Fatal(err)
	}
	var unknown *migrate.UnknownMigrationError
	if _, err := m.Pending(ctx, conn); !errors.As(err, &unknown) || unknown.Version != "29991231000000" {
		t.Errorf("Pending: %v", err)
	}
}
