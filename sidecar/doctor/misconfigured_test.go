package doctor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/doctor"
	"github.com/keapsync/keapsync/sidecar/migrate"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// findings runs the doctor and indexes its findings by check.
func findings(t *testing.T, db doctor.DB, cfg doctor.Config) map[string]doctor.Finding {
	t.Helper()
	got := map[string]doctor.Finding{}
	for _, f := range doctor.Run(context.Background(), db, cfg) {
		got[f.Check] = f
	}
	return got
}

// want fails unless the finding exists at level and its detail and fix say each of says.
func want(t *testing.T, got map[string]doctor.Finding, check string, level doctor.Level, says ...string) {
	t.Helper()
	f, ok := got[check]
	if !ok || f.Level != level {
		t.Errorf("%s: %+v, want level %s", check, f, level)
		return
	}
	for _, s := range says {
		if !strings.Contains(f.Detail+" | "+f.Fix, s) {
			t.Errorf("%s: %+v does not say %q", check, f, s)
		}
	}
	if level != doctor.OK && f.Fix == "" && check != "accounts" {
		t.Errorf("%s is %s but says nothing about what to do", check, level)
	}
}

// A cluster of its own, because what is checked here is the server's configuration: a limit on
// the WAL a slot may keep, a slot that fell past it, and wal_level below logical. Its database
// was never migrated.
func TestDoctorOnAMisconfiguredCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, stop, err := pgtest.StartCluster(ctx)
	if err != nil {
		t.Fatalf("start a private cluster: %v", err)
	}
	t.Cleanup(stop)
	url := c.URL("postgres")
	db := open(t, url)
	keepSize := func(size string) {
		t.Helper()
		if _, err := db.Exec(ctx, "alter system set max_slot_wal_keep_size = '"+size+"'"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `select pg_reload_conf()`); err != nil {
			t.Fatal(err)
		}
		waitFor(t, db, `select current_setting('max_slot_wal_keep_size') = $1`, size)
	}
	keepSize("64MB")
	if _, err := db.Exec(ctx, `select pg_create_logical_replication_slot('keapsync_push', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	mig, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}

	got := findings(t, db, doctor.Config{DatabaseURL: url, MaxSlotLag: 64 << 20, Migrations: mig.Migrations})
	want(t, got, "connection", doctor.OK, "direct connection")
	want(t, got, "wal_level", doctor.OK)
	want(t, got, "max_slot_wal_keep_size", doctor.OK, "64 MiB")
	want(t, got, "push slot", doctor.OK, "idle", "MiB before max_slot_wal_keep_size invalidates it")
	want(t, got, "publication", doctor.Warn, "keapsync_push missing", "keapsync serve")
	want(t, got, "migrations", doctor.Fail, "pending (first "+mig.Migrations[0].File+")", "keapsync migrate")
	want(t, got, "accounts", doctor.Fail, "keapsync")

	// Under a quarter of the pile-up limit left before the server drops the slot.
	got = findings(t, db, doctor.Config{MaxSlotLag: 1 << 40})
	want(t, got, "push slot", doctor.Fail, "close to invalidation", "MiB left", "WAL pile-up")

	// A slot that fell past the limit is gone for good: drop it, and reconcile what it missed.
	keepSize("1MB")
	if _, err := db.Exec(ctx, `create table wal (x int)`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, db, `select wal_status = 'lost' from pg_replication_slots where slot_name = 'keapsync_push'`, nil,
		`insert into wal values (1)`, `select pg_switch_wal()`, `checkpoint`)
	got = findings(t, db, doctor.Config{})
	want(t, got, "push slot", doctor.Fail, "was invalidated", "pg_drop_replication_slot('keapsync_push')", "keapsync reconcile")

	// wal_level is read at start: the server restarts with replica, which carries no logical
	// replication (and refuses to start while a logical slot exists).
	if _, err := db.Exec(ctx, `select pg_drop_replication_slot('keapsync_push')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	restart(t, c, "wal_level=replica")
	got = findings(t, open(t, url), doctor.Config{})
	want(t, got, "wal_level", doctor.Fail, "wal_level is replica", "set wal_level = logical")
	want(t, got, "push slot", doctor.Warn, "does not exist yet")
}

func open(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	db, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// waitFor runs between each try the statements in between, until query (with arg, when not
// nil) is true. The bound only catches a hang.
func waitFor(t *testing.T, db *pgxpool.Pool, query string, arg any, between ...string) {
	t.Helper()
	ctx := context.Background()
	args := []any{}
	if arg != nil {
		args = append(args, arg)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		for _, q := range between {
			if _, err := db.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		var ok bool
		if err := db.QueryRow(ctx, query, args...).Scan(&ok); err != nil && err != pgx.ErrNoRows {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not true after a minute: %s", query)
		}
	}
}

func restart(t *testing.T, c *pgcluster.Cluster, settings ...string) {
	t.Helper()
	ctx := context.Background()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	c.Config = append(c.Config, settings...)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
}
