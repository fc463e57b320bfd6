package migrate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/migrate"
	"github.com/keapsync/keapsync/sidecar/pgtest"
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
	ctx := context.Background()
	conn := connect(t, pgtest.EmptyURL(t))
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
	ctx := context.Background()
	conn := connect(t, pgtest.EmptyURL(t))
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

func TestRefusesUnknownAppliedVersion(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, pgtest.URL(t)) // fully migrated
	m := &migrate.Migrator{Migrations: []migrate.Migration{{Version: "1", Name: "x", File: "1_x.sql"}}}
	_, err := m.Apply(ctx, conn)
	if err == nil || !strings.Contains(err.Error(), "not among the local migrations") {
		t.Fatalf("err = %v, want a refusal naming the unknown version", err)
	}
}
