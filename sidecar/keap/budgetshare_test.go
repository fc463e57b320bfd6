package keap

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

// Two sidecar processes on one OAuth app: each gets half the budget, and the survivor gets
// it all back when the other leaves or dies. Real Postgres, the migration's SQL functions.
func TestBudgetShareDividesTheBudget(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	clock := newFakeClock(t)
	clock.setGate(never) // heartbeats only when the test advances time
	key := OAuthBudgetKey("client-1")
	newProc := func(member string) (*Budget, *BudgetShare) {
		b, err := NewBudget(BudgetConfig{Key: key, Limits: OAuthLimits, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewBudgetShare(pool, b, BudgetShareConfig{Member: member, Clock: clock, Logger: testLogger(t, 0)})
		if err != nil {
			t.Fatal(err)
		}
		return b, s
	}
	budgetA, a := newProc("a")
	budgetB, b := newProc("b")
	full := budgetA.Stats().Rate

	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	if a.Members() != 1 || budgetA.Stats().Rate != full {
		t.Fatalf("alone: %d members, rate %v", a.Members(), budgetA.Stats().Rate)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Members() != 2 || math.Abs(budgetB.Stats().Rate-full/2) > 1e-9 {
		t.Fatalf("second process: %d members, rate %v", b.Members(), budgetB.Stats().Rate)
	}
	// A learns of B on its next heartbeat. Advance until it has: A's heartbeat goroutine may not
	// be waiting on the fake clock yet when time first moves.
	beatUntil(t, clock, func() bool { return budgetA.Stats().Members == 2 })
	if math.Abs(budgetA.Stats().Rate-full/2) > 1e-9 {
		t.Fatalf("A after B joined: rate %v", budgetA.Stats().Rate)
	}

	// B leaves cleanly: A is back to the full budget on its next beat.
	b.Stop()
	beatUntil(t, clock, func() bool { return budgetA.Stats().Members == 1 })
	if budgetA.Stats().Rate != full {
		t.Fatalf("A alone again: rate %v", budgetA.Stats().Rate)
	}

	// A process that died without leaving stops counting once its heartbeat is older than TTL.
	if _, err := pool.Exec(ctx, `insert into keapsync.rate_budget_members (budget_key, member_id, heartbeat_at)
		values ($1, 'dead', now() - interval '1 minute'), ($1, 'alive', now())`, key); err != nil {
		t.Fatal(err)
	}
	n, err := a.Beat(ctx)
	if err != nil || n != 2 {
		t.Fatalf("with one dead and one live peer: %d members, %v", n, err)
	}
	var left int
	if err := pool.QueryRow(ctx, `select count(*) from keapsync.rate_budget_members where member_id = 'dead'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("dead member not forgotten: %d %v", left, err)
	}
	// Other budgets are not affected.
	other, _ := NewBudget(BudgetConfig{Key: TenantBudgetKey("ab123.infusionsoft.com"), Limits: TenantLimits, Clock: clock})
	share, _ := NewBudgetShare(pool, other, BudgetShareConfig{Member: "a", Clock: clock})
	if n, err := share.Beat(ctx); err != nil || n != 1 {
		t.Fatalf("tenant budget: %d %v", n, err)
	}
}

func TestBudgetShareKeepsLastShareWhenDatabaseFails(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	clock := newFakeClock(t)
	b, _ := NewBudget(BudgetConfig{Key: KeyBudgetKey("KeapAK-secret"), Limits: KeyLimits, Clock: clock})
	s, err := NewBudgetShare(pool, b, BudgetShareConfig{Member: "x", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `insert into keapsync.rate_budget_members (budget_key, member_id) values ($1, 'peer')`, b.Key()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Beat(context.Background()); err != nil || n != 2 {
		t.Fatalf("beat: %d %v", n, err)
	}
	pool.Close()
	if _, err := s.Beat(context.Background()); err == nil {
		t.Fatal("beat on a closed pool: want an error")
	}
	if b.Stats().Members != 2 {
		t.Fatalf("a failed heartbeat must keep the last share, not assume we are alone: %+v", b.Stats())
	}
	if got := b.Key(); got == "" || got == "key:KeapAK-secret" || len(got) != len("key:")+16 {
		t.Fatalf("key budget name %q must not carry the key", got)
	}
}

// beatUntil moves the fake clock one heartbeat at a time until cond holds (bounded, so a broken
// share fails the test instead of hanging it).
func beatUntil(t *testing.T, clock *fakeClock, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the share never caught up")
		}
		clock.Advance(5 * time.Second)
	}
}
