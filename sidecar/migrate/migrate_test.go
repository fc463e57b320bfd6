package migrate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/migrate"
	"github.com/keapsync/keapsync/sql/compat"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestApplyBootstrapsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t, pgtest.EmptyURL(t))
	pgtest.LockRoles(t) // the bootstrap and the migrations grant to the cluster's roles
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Apply(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	// Roles are cluster-wide, so the bootstrap may have run for another database already; the
	// auth schema and publication are per database and must have been created here.
	if !res.Bootstrapped {
		t.Error("Bootstrapped = false on a plain database")
	}
	if len(res.Applied) != len(m.Migrations) || res.Current != 0 {
		t.Errorf("applied %d of %d, current %d", len(res.Applied), len(m.Migrations), res.Current)
	}
	var n int
	var stmts []string
	err = conn.QueryRow(ctx, `select count(*), (select statements from supabase_migrations.schema_migrations
	  order by version limit 1) from supabase_migrations.schema_migrations`).Scan(&n, &stmts)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(m.Migrations) || len(stmts) != len(m.Migrations[0].Statements) {
		t.Errorf("history has %d rows, first with %d statements; want %d rows, %d statements",
			n, len(stmts), len(m.Migrations), len(m.Migrations[0].Statements))
	}

	again, err := m.Apply(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if again.Bootstrapped || len(again.Applied) != 0 || again.Current != len(m.Migrations) {
		t.Errorf("second run = %+v, want nothing to do", again)
	}
}

func TestFailingMigrationChangesNothingAndNamesStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t, pgtest.EmptyURL(t))
	pgtest.LockRoles(t) // the bootstrap and the migrations grant to the cluster's roles
	fsys := fstest.MapFS{
		"m/001_good.sql": {Data: []byte("create table good (id int);\n")},
		"m/002_bad.sql": {Data: []byte("-- half of this must not stay\ncreate table half (id int);\n" +
			"insert into half values ('not a number');\ncreate table never (id int);\n")},
	}
	ms, err := migrate.Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	m := &migrate.Migrator{Migrations: ms, Bootstrap: compat.Bootstrap, BootstrapPath: compat.Path}
	res, err := m.Apply(ctx, conn)
	var se *migrate.StatementError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a StatementError", err)
	}
	if se.File != "002_bad.sql" || se.Index != 2 {
		t.Errorf("failed at %s statement %d, want 002_bad.sql statement 2", se.File, se.Index)
	}
	for _, want := range []string{"002_bad.sql", "statement 2", "insert into half", "22P02"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(res.Applied) != 1 {
		t.Errorf("applied %v, want only the good file", res.Applied)
	}
	var half, versions int
	if err := conn.QueryRow(ctx, `select count(*) filter (where relname = 'half'),
	  (select count(*) from supabase_migrations.schema_migrations) from pg_class`).Scan(&half, &versions); err != nil {
		t.Fatal(err)
	}
	if half != 0 || versions != 1 {
		t.Errorf("after the failure: table half exists=%d, history rows=%d; want 0 and 1", half, versions)
	}
}

// A database migrated by a newer keapsync: the binary names the migration it lacks and applies
// nothing.
func TestRefusesUnknownKeapsyncMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t, pgtest.URL(t)) // fully migrated
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `insert into supabase_migrations.schema_migrations (version, name, statements)
	  values ('29991231000000', 'keapsync_from_the_future', '{}')`); err != nil {
		t.Fatal(err)
	}
	_, err = m.Apply(ctx, conn)
	var unknown *migrate.UnknownMigrationError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "29991231000000_keapsync_from_the_future") ||
		!strings.Contains(err.Error(), "upgrade keapsync") {
		t.Fatalf("err = %v, want a refusal naming 29991231000000_keapsync_from_the_future", err)
	}
}

// The user's own migrations share the history: keapsync applies its own missing ones around
// them, in order, and leaves their rows alone.
func TestCoexistsWithOtherProjectsMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t, pgtest.EmptyURL(t))
	pgtest.LockRoles(t) // the bootstrap and the migrations grant to the cluster's roles
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	user := []string{"20250101000000", "20261127080050", "29990101000000"} // older than, between and newer than keapsync's
	for _, q := range []string{`create schema supabase_migrations`,
		`create table supabase_migrations.schema_migrations (version text not null primary key, statements text[], name text)`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range user {
		if _, err := conn.Exec(ctx, `insert into supabase_migrations.schema_migrations values ($1, '{}', 'my_app')`, v); err != nil {
			t.Fatal(err)
		}
	}
	// An older keapsync, with only the first migration, recorded it under its name before the prefix.
	old := *m
	old.Migrations = m.Migrations[:1]
	if _, err := old.Apply(ctx, conn); err != nil {
		t.Fatal(err)
	}
	first := m.Migrations[0]
	if _, err := conn.Exec(ctx, `update supabase_migrations.schema_migrations set name = 'core_schema' where version = $1`, first.Version); err != nil {
		t.Fatal(err)
	}
	res, err := m.Apply(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != len(m.Migrations)-1 || res.Current != 1 {
		t.Fatalf("applied %d, current %d; want %d and 1", len(res.Applied), res.Current, len(m.Migrations)-1)
	}
	var users int
	if err := conn.QueryRow(ctx, `select count(*) from supabase_migrations.schema_migrations where name = 'my_app'`).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if users != len(user) {
		t.Errorf("%d of the user's history rows left, want %d", users, len(user))
	}
	if again, err := m.Apply(ctx, conn); err != nil || len(again.Applied) != 0 {
		t.Errorf("second run: %+v, %v; want nothing to do", again, err)
	}
}

// Every migration file carries keapsync's prefix, so a shared history (and a user's
// supabase/migrations folder) tells keapsync's migrations from the user's by name alone.
func TestEveryMigrationIsNamedAsKeapsyncs(t *testing.T) {
	t.Parallel()
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mig := range m.Migrations {
		if !strings.HasPrefix(mig.Name, migrate.Prefix) || len(mig.Version) != 14 {
			t.Errorf("%s: name it <14-digit version>_%s<what>.sql", mig.File, migrate.Prefix)
		}
	}
}
