package doctor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/doctor"
)

// The push slot as doctor sees it: idle with its lag while it keeps up, a failure once it retains
// more WAL than the limit, and close to invalidation when what max_slot_wal_keep_size leaves is
// under a quarter of the limit.
func TestDoctorReadsTheSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	var slot string
	if err := db.QueryRow(ctx, `select 'doctor_' || replace(gen_random_uuid()::text, '-', '_')`).Scan(&slot); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `select pg_create_logical_replication_slot($1, 'pgoutput')`, slot); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec(context.Background(), `select pg_drop_replication_slot($1)`, slot) })
	// Some WAL past the slot's position: a lag of at least a few bytes.
	if _, err := db.Exec(ctx, `create table doctor_wal (x int); insert into doctor_wal select generate_series(1, 100)`); err != nil {
		t.Fatal(err)
	}
	finding := func(cfg doctor.Config) doctor.Finding {
		t.Helper()
		cfg.Slot = slot
		for _, f := range doctor.Run(ctx, db, cfg) {
			if f.Check == "push slot" {
				return f
			}
		}
		t.Fatal("no push slot finding")
		return doctor.Finding{}
	}
	var keep int64
	if err := db.QueryRow(ctx, `select pg_size_bytes(current_setting('max_slot_wal_keep_size'))`).Scan(&keep); err != nil {
		t.Fatal(err)
	}
	idle := finding(doctor.Config{})
	if idle.Level != doctor.OK || !strings.HasPrefix(idle.Detail, "idle (no sidecar attached), lag ") {
		t.Errorf("a slot that keeps up: %+v", idle)
	}
	if keep < 0 && strings.Contains(idle.Detail, "before max_slot_wal_keep_size") {
		t.Errorf("an unlimited keep size names a margin: %+v", idle)
	}
	if f := finding(doctor.Config{MaxSlotLag: 1}); f.Level != doctor.Fail || !strings.Contains(f.Detail, "retains") || !strings.Contains(f.Fix, "WAL pile-up") {
		t.Errorf("a slot past the limit: %+v", f)
	}
	if keep < 0 {
		t.Logf("max_slot_wal_keep_size is unlimited here: the margin check cannot be shown")
		return
	}
	if f := finding(doctor.Config{MaxSlotLag: 1 << 62}); f.Level != doctor.Fail || !strings.Contains(f.Detail, "close to invalidation") ||
		!strings.Contains(f.Detail, "MiB left") {
		t.Errorf("a slot near invalidation: %+v", f)
	}
}
