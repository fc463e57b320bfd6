package keapclients_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/keapclients"
)

// refusingDB is the database, except that while refusing is set it fails every heartbeat of one
// budget (a statement whose first argument is that budget's key), as a database that went away
// partway would.
type refusingDB struct {
	*pgxpool.Pool
	budget   string
	refusing atomic.Bool
}

var errAway = errors.New("the database went away")

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (d *refusingDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if d.refusing.Load() && len(args) > 0 && args[0] == d.budget {
		return errRow{errAway}
	}
	return d.Pool.QueryRow(ctx, sql, args...)
}

func refusingRegistry(t *testing.T, db *pgxpool.Pool, key, budget string) (*keapclients.Registry, *refusingDB) {
	t.Helper()
	rdb := &refusingDB{Pool: db, budget: budget}
	r, err := keapclients.New(keapclients.Config{APIURL: "http://127.0.0.1:1/crm/rest", APIKey: key, Logger: testlog.New(t)}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	return r, rdb
}

// A Start that cannot share every budget fails whole: the budgets it had shared already are
// left at once (the other processes would otherwise count a member that never heartbeats
// again), and the registry can be started once the database is back.
func TestStartThatFailsPartwayLeavesWhatItShared(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	id := accounts(t, db, "f.example")[0]
	app, tenant := keap.KeyBudgetKey("KEY-4"), keap.TenantBudgetKey("f.example")
	r, rdb := refusingRegistry(t, db, "KEY-4", tenant)
	ctx := context.Background()
	if _, err := r.For(ctx, id); err != nil {
		t.Fatal(err)
	}
	rdb.refusing.Store(true)
	err := r.Start(ctx)
	if !errors.Is(err, errAway) || !strings.Contains(err.Error(), tenant) {
		t.Fatalf("Start with the tenant's share refused: %v; want the database's error, naming the budget", err)
	}
	if n := members(t, db, app); n != 0 {
		t.Errorf("after a failed Start the app budget still counts %d members of this process, want 0", n)
	}
	rdb.refusing.Store(false)
	if err := r.Start(ctx); err != nil {
		t.Fatalf("Start once the database is back: %v", err)
	}
	defer r.Stop()
	if members(t, db, app) != 1 || members(t, db, tenant) != 1 {
		t.Errorf("after Start: app %d, tenant %d members; want 1 and 1", members(t, db, app), members(t, db, tenant))
	}
}

// A tenant first met after Start whose budget cannot be shared gets no client (an unshared
// client would spend the tenant's budget as if alone, beside the other processes); the next
// For, with the database back, shares it and makes the client.
func TestTenantThatCannotBeSharedGetsNoClientUntilItCan(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	id := accounts(t, db, "g.example")[0]
	tenant := keap.TenantBudgetKey("g.example")
	r, rdb := refusingRegistry(t, db, "KEY-5", tenant)
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	rdb.refusing.Store(true)
	if cl, err := r.For(ctx, id); !errors.Is(err, errAway) || cl != nil {
		t.Fatalf("For while the tenant's share is refused: client %v, err %v", cl, err)
	}
	if n := len(r.TenantBudgets()); n != 0 {
		t.Errorf("%d accounts have a client after the refused share, want 0", n)
	}
	rdb.refusing.Store(false)
	if _, err := r.For(ctx, id); err != nil {
		t.Fatalf("For with the database back: %v", err)
	}
	if n := members(t, db, tenant); n != 1 {
		t.Errorf("the tenant's budget has %d members, want 1", n)
	}
}
