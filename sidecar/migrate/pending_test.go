package migrate_test

import (
	"context"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/migrate"
)

// Pending reads the history without changing it: a database without one has every migration
// pending, a migrated one none but what is newer than it.
func TestPendingReadsTheHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	empty := connect(t, pgtest.EmptyURL(t))
	if p, err := m.Pending(ctx, empty); err != nil || len(p) != len(m.Migrations) {
		t.Errorf("a database without the history: %d of %d pending, %v", len(p), len(m.Migrations), err)
	}
	migrated := connect(t, pgtest.URL(t))
	if p, err := m.Pending(ctx, migrated); err != nil || len(p) != 0 {
		t.Errorf("a migrated database: %d pending, %v", len(p), err)
	}
	newer := &migrate.Migrator{Migrations: append(m.Migrations[:len(m.Migrations):len(m.Migrations)],
		migrate.Migration{Version: "99990101000000", Name: "future"})}
	if p, err := newer.Pending(ctx, migrated); err != nil || len(p) != 1 || p[0].Version != "99990101000000" {
		t.Errorf("one newer migration: %+v, %v", p, err)
	}
	migrated.Close(ctx)
	if _, err := m.Pending(ctx, migrated); err == nil {
		t.Error("a closed connection: no error")
	}
}
