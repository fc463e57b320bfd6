package push

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

// WAL pile-up alarm: a slot nobody consumes, retaining more WAL than MaxSlotLag, raises
// keapsync_push_slot_lag_over_limit; a generous limit keeps it down.
func TestSlotLagAlarm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	cfg := DefaultConfig()
	cfg.DB, cfg.Slot, cfg.MaxSlotLag = db, fmt.Sprintf("lag_test_%d", time.Now().UnixNano()%1e9), 1024
	cfg.API = func(context.Context, string) (Keap, error) { return nil, fmt.Errorf("not used") }
	cfg.MetricsInterval = 10 * time.Millisecond
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ensure(ctx); err != nil { // creates the slot and publication; nothing consumes them here
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), `select pg_drop_replication_slot($1)`, cfg.Slot) })
	if _, err := db.Exec(ctx, `insert into keapsync.accounts (name) select 'wal ' || g from generate_series(1, 200) g`); err != nil {
		t.Fatal(err)
	}
	// One sample landed: under load a 50 ms round may end before its query answers, which
	// leaves the gauge as it was, so rounds repeat until one has set it.
	sampleOnce := func() float64 {
		p.metrics.lagOver.Set(-1)
		for testutil.ToFloat64(p.metrics.lagOver) == -1 {
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_ = p.sample(short)
			cancel()
		}
		return testutil.ToFloat64(p.metrics.lagOver)
	}
	if got := sampleOnce(); got != 1 {
		t.Errorf("alarm = %v with the slot far behind a 1 KiB limit, want 1", got)
	}
	p.cfg.MaxSlotLag = 1 << 40
	if got := sampleOnce(); got != 0 {
		t.Errorf("alarm = %v under a 1 TiB limit, want 0", got)
	}
}
