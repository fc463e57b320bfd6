package serve

import (
	"context"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
)

// Serve's scheduled rounds run while it runs: the slot's position is sampled into
// keapsync.slot_progress and the Keap budgets are copied to keapsync.rate_budget_usage; the
// sweeps and hook re-verification find no account that can sync and do nothing. Run returns
// cleanly when its context ends.
func TestScheduledRounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	slot := replicationSlot(t, db)
	var account string
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, credential) values ('Budget', 'oauth') returning id::text`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	log := testlog.New(t)
	s := &Server{
		Config: everyRound(slot),
		DB:     db, Log: log,
		Receiver: &ingest.Receiver{DB: db, Log: log},
		Worker:   &ingest.Worker{DB: db, Log: log},
		Sweeper:  &ingest.Sweeper{DB: db, Log: log},
		Hooks: func(context.Context, string) (ingest.HookAPI, error) {
			t.Error("hooks re-verified for an account that cannot sync")
			return nil, nil
		},
		Budgets: func() map[string]keap.BudgetStats {
			return map[string]keap.BudgetStats{account: {Limits: keap.TenantLimits, ThrottleAvailable: 5, QuotaAvailable: 7}}
		},
	}
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- s.Run(runCtx) }()
	seen := func(sql string, args ...any) bool {
		var n int
		if err := db.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	for !seen(`select count(*) from keapsync.slot_progress where slot_name = $1`, slot) ||
		!seen(`select count(*) from keapsync.rate_budget_usage where account_id = $1 and minute_available = 5`, account) {
		time.Sleep(roundEvery)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run after its context ended: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Error("Run returned before the server was done")
	}
}

// roundEvery is how often the rounds of everyRound run.
const roundEvery = 20 * time.Millisecond

// everyRound is a serve configuration that runs every scheduled round every 20 ms.
func everyRound(slot string) Config {
	return Config{Listen: "127.0.0.1:0", PublicURL: "http://127.0.0.1:1", ReconcileEvery: roundEvery, HooksEvery: roundEvery,
		DeletesEvery: roundEvery, BudgetsEvery: roundEvery, Slot: slot, SlotEvery: roundEvery, ShutdownGrace: time.Second}
}

// replicationSlot makes a pgoutput slot for serve to sample, dropped when the test ends.
func replicationSlot(t *testing.T, db DB) string {
	t.Helper()
	ctx := context.Background()
	var slot string
	if err := db.QueryRow(ctx, `select 'rounds_' || replace(gen_random_uuid()::text, '-', '_')`).Scan(&slot); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `select pg_create_logical_replication_slot($1, 'pgoutput')`, slot); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec(context.Background(), `select pg_drop_replication_slot($1)`, slot) })
	return slot
}
