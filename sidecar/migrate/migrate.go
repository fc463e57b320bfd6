// Package migrate applies the Supabase migrations to a database and records them in
// supabase_migrations.schema_migrations exactly as `supabase db push` does, so one database can
// take both; on plain PostgreSQL it first applies the Supabase compatibility bootstrap.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Prefix marks keapsync's migrations in a history shared with the user's own project: every
// migration file is named <version>_keapsync_<what>.sql (a test holds supabase/migrations to it),
// so a history row whose name starts with it is keapsync's even when this binary does not know
// its version. Rows from before the prefix carry versions every binary knows.
const Prefix = "keapsync_"

// Migration is one file of supabase/migrations.
type Migration struct {
	Version    string // the digits before the first underscore
	Name       string // the rest of the file name, without .sql
	File       string
	SQL        string // the file as shipped, byte for byte
	Statements []string
}

// The Supabase CLI's own pattern for migration file names.
var fileName = regexp.MustCompile(`^([0-9]+)_(.*)\.sql$`)

// Load reads every migration in dir of fsys, in version order.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: m[1], Name: m[2], File: e.Name(), SQL: string(b), Statements: Split(string(b))})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].File < ms[j].File })
	return ms, nil
}

// Migrator applies migrations. Bootstrap is applied first on a database without Supabase's
// roles, auth and realtime objects.
type Migrator struct {
	Migrations    []Migration
	Bootstrap     string
	BootstrapPath string
	Log           *slog.Logger
}

// Result says what Apply did.
type Result struct {
	Bootstrapped bool
	Applied      []string // files applied now
	Current      int      // migrations that were already applied
}

// Statements the Supabase CLI runs to create its history table (pkg/migration/history.go).
const (
	sqlLockTimeout      = `SET lock_timeout = '4s'`
	sqlLockTimeoutReset = `RESET lock_timeout` // ours, not the CLI's: the caller's connection outlives Apply
	sqlHistorySchema    = `CREATE SCHEMA IF NOT EXISTS supabase_migrations`
	sqlHistoryTable     = `CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY)`
	sqlHistoryStmts     = `ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[]`
	sqlHistoryName      = `ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text`
	sqlHistoryInsert    = `INSERT INTO supabase_migrations.schema_migrations(version, name, statements) VALUES($1, $2, $3)`
	sqlApplied          = `SELECT version, coalesce(name, '') FROM supabase_migrations.schema_migrations ORDER BY version`

	// What the migrations expect from Supabase; any one missing means plain PostgreSQL.
	sqlHasSupabase = `SELECT to_regrole('anon') IS NOT NULL AND to_regrole('authenticated') IS NOT NULL
	  AND to_regrole('service_role') IS NOT NULL AND to_regprocedure('auth.uid()') IS NOT NULL
	  AND to_regclass('auth.users') IS NOT NULL AND to_regprocedure('realtime.send(jsonb,text,text,boolean)') IS NOT NULL
	  AND EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime')`
)

// Apply brings the database on conn up to date. Each migration runs in its own transaction
// together with its history row, so a failing file changes nothing and names its statement.
func (m *Migrator) Apply(ctx context.Context, conn *pgx.Conn) (Result, error) {
	var res Result
	log := m.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var ok bool
	if err := conn.QueryRow(ctx, sqlHasSupabase).Scan(&ok); err != nil {
		return res, fmt.Errorf("inspect database: %w", err)
	}
	if !ok {
		if m.Bootstrap == "" {
			return res, errors.New("database lacks Supabase's roles, auth and realtime objects, and no bootstrap is configured")
		}
		log.Info("database lacks what Supabase provides; applying the compatibility bootstrap", "file", m.BootstrapPath)
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, m.Bootstrap)
			return err
		}); err != nil {
			return res, fmt.Errorf("apply bootstrap %s: %w", m.BootstrapPath, err)
		}
		res.Bootstrapped = true
	}
	// The CLI's session-wide lock timeout would otherwise stay on the caller's connection and
	// cut short its later waits (creating a replication slot waits for every open transaction).
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), sqlLockTimeoutReset) }()
	for _, q := range []string{sqlLockTimeout, sqlHistorySchema, sqlHistoryTable, sqlHistoryStmts, sqlHistoryName} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return res, fmt.Errorf("prepare migration history: %w", err)
		}
	}
	applied, err := m.history(ctx, conn, log)
	if err != nil {
		return res, err
	}
	for _, mig := range m.Migrations {
		if applied[mig.Version] {
			res.Current++
			continue
		}
		if err := applyOne(ctx, conn, mig); err != nil {
			return res, err
		}
		log.Info("applied migration", "file", mig.File, "statements", len(mig.Statements))
		res.Applied = append(res.Applied, mig.File)
	}
	return res, nil
}

// Pending lists this binary's migrations the database has not applied yet, reading the history
// without changing anything. A database without the history table has them all pending.
func (m *Migrator) Pending(ctx context.Context, q querier) ([]Migration, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read migration history: %w", err)
	}
	applied := map[string]bool{}
	if exists {
		var err error
		if applied, err = m.history(ctx, q, slog.New(slog.DiscardHandler)); err != nil {
			return nil, err
		}
	}
	var pending []Migration
	for _, mig := range m.Migrations {
		if !applied[mig.Version] {
			pending = append(pending, mig)
		}
	}
	return pending, nil
}

// UnknownMigrationError: the database holds a keapsync migration this binary does not have, so
// it was migrated by a newer keapsync.
type UnknownMigrationError struct{ Version, Name string }

func (e *UnknownMigrationError) Error() string {
	return fmt.Sprintf("database has keapsync migration %s_%s, which this keapsync binary does not know: "+
		"upgrade keapsync to the version that installed it (nothing was applied)", e.Version, e.Name)
}

// querier is what reading the history needs: a connection, a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// history reads the applied versions that are keapsync's. Other projects' rows in the shared
// history are theirs to manage: they are mentioned at debug level and otherwise ignored.
func (m *Migrator) history(ctx context.Context, q querier, log *slog.Logger) (map[string]bool, error) {
	rows, _ := q.Query(ctx, sqlApplied)
	type row struct{ Version, Name string }
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		return nil, fmt.Errorf("read migration history: %w", err)
	}
	known := m.versions()
	applied := make(map[string]bool, len(all))
	for _, r := range all {
		switch {
		case known[r.Version]:
			applied[r.Version] = true
		case strings.HasPrefix(r.Name, Prefix):
			return nil, &UnknownMigrationError{Version: r.Version, Name: r.Name}
		default:
			log.Debug("migration history row is not keapsync's; ignored", "version", r.Version, "name", r.Name)
		}
	}
	return applied, nil
}

// versions is the set of this binary's migration versions.
func (m *Migrator) versions() map[string]bool {
	vs := make(map[string]bool, len(m.Migrations))
	for _, mig := range m.Migrations {
		vs[mig.Version] = true
	}
	return vs
}

// Owns says whether a history row (or a migration file's version and name) is keapsync's: a
// version this binary ships, or a name with keapsync's prefix.
func (m *Migrator) Owns(version, name string) bool {
	return m.versions()[version] || strings.HasPrefix(name, Prefix)
}

func applyOne(ctx context.Context, conn *pgx.Conn, mig Migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for i, stmt := range mig.Statements {
			// The simple protocol, as the CLI sends them: no parameters, any statement kind.
			if _, err := tx.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol); err != nil {
				return &StatementError{File: mig.File, Index: i + 1, Statement: stmt, Err: err}
			}
		}
		if _, err := tx.Exec(ctx, sqlHistoryInsert, mig.Version, mig.Name, mig.Statements); err != nil {
			return fmt.Errorf("record migration %s: %w", mig.File, err)
		}
		return nil
	})
}

// StatementError names the migration file and statement that failed.
type StatementError struct {
	File      string
	Index     int // 1-based
	Statement string
	Err       error
}

func (e *StatementError) Error() string {
	msg := e.Err.Error()
	var pgErr *pgconn.PgError
	if errors.As(e.Err, &pgErr) {
		msg = fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
		if pgErr.Detail != "" {
			msg += ": " + pgErr.Detail
		}
	}
	return fmt.Sprintf("migration %s failed at statement %d: %s\n  statement: %s\n  (nothing from this file was applied)",
		e.File, e.Index, msg, excerpt(e.Statement))
}

func (e *StatementError) Unwrap() error { return e.Err }

// excerpt is the statement's first code line (after its leading comments), clipped.
func excerpt(stmt string) string {
	for _, line := range strings.Split(stmt, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "--") {
			if len(l) > 120 {
				l = l[:117] + "..."
			}
			return l
		}
	}
	return stmt
}
