package serve

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
)

// awayDB is the database, except that while away is set the scheduled statements serve makes
// itself (the slot sample, the budget report) fail, as a database briefly away would.
type awayDB struct {
	*pgxpool.Pool
	away atomic.Bool
}

func (d *awayDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if d.away.Load() && (sql == sqlObserveSlot || sql == sqlReportBudgets) {
		return pgconn.CommandTag{}, errors.New("the database is away")
	}
	return d.Pool.Exec(ctx, sql, args...)
}

// Scheduled rounds carry on through failures: an account whose Keap client cannot be had fails
// its reconcile, delete sweep and hook check in every round, and is tried again in the next; a
// round whose own statement fails is tried again too, and records once the database is back.
// Serve itself keeps running and ends cleanly.
func TestScheduledRoundsCarryOnThroughFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	db := &awayDB{Pool: pool}
	db.away.Store(true)
	slot := replicationSlot(t, pool)
	var account string
	if err := pool.QueryRow(ctx, `insert into keapsync.accounts (name, keap_tenant, credential) values ('Unreachable', 'unreachable', 'api_key') returning id::text`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	var sweeps, hookChecks atomic.Int32
	noClient := errors.New("no Keap client for this account")
	log := testlog.New(t)
	s := &Server{
		Config: everyRound(slot),
		DB:     db, Log: log,
		Receiver: &ingest.Receiver{DB: db, Log: log},
		Worker:   &ingest.Worker{DB: db, Log: log},
		Sweeper: &ingest.Sweeper{DB: db, Log: log, API: func(context.Context, string) (ingest.Keap, error) {
			sweeps.Add(1)
			return nil, noClient
		}},
		Hooks: func(context.Context, string) (ingest.HookAPI, error) {
			hookChecks.Add(1)
			return nil, noClient
		},
		Budgets: func() map[string]keap.BudgetStats {
			return map[string]keap.BudgetStats{account: {Limits: keap.TenantLimits, ThrottleAvailable: 3, QuotaAvailable: 4}}
		},
	}
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- s.Run(runCtx) }()
	count := func(sql string, args ...any) int {
		var n int
		if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Two reconciles and two delete sweeps, two hook checks: each account failure was retried.
	for sweeps.Load() < 4 || hookChecks.Load() < 2 {
		select {
		case err := <-ran:
			t.Fatalf("serve ended while its rounds failed: %v", err)
		case <-time.After(roundEvery):
		}
	}
	if count(`select count(*) from keapsync.slot_progress where slot_name = $1`, slot) != 0 ||
		count(`select count(*) from keapsync.rate_budget_usage where account_id = $1`, account) != 0 {
		t.Fatal("a round recorded while its statement failed")
	}
	db.away.Store(false)
	for count(`select count(*) from keapsync.slot_progress where slot_name = $1`, slot) == 0 ||
		count(`select count(*) from keapsync.rate_budget_usage where account_id = $1 and minute_available = 3`, account) == 0 {
		time.Sleep(roundEvery)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run after its context ended: %v", err)
	}
}
