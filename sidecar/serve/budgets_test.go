package serve

import (
	"context"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keap"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The reporter writes what the limiter last heard from Keap, only when it changed, and never
// for an account that is gone or a budget Keap has not reported on.
func TestBudgetReporter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	const account, gone, quiet = "50000000-0000-4000-8000-0000000000b1", "50000000-0000-4000-8000-0000000000b2", "50000000-0000-4000-8000-0000000000b3"
	if _, err := db.Exec(ctx, `insert into keapsync.accounts (id, name) values ($1, 'Budget'), ($2, 'Quiet')`, account, quiet); err != nil {
		t.Fatal(err)
	}
	resets := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	stats := map[string]keap.BudgetStats{
		account: {Limits: keap.TenantLimits, ThrottleAvailable: 9876, QuotaAvailable: 237655, QuotaResets: resets},
		gone:    {Limits: keap.TenantLimits, ThrottleAvailable: 1, QuotaAvailable: 1},
		quiet:   {Limits: keap.TenantLimits, ThrottleAvailable: -1, QuotaAvailable: -1},
	}
	r := &budgetReporter{db: db, budgets: func() map[string]keap.BudgetStats { return stats }}
	row := func() (used int, left int, at time.Time) {
		t.Helper()
		if err := db.QueryRow(ctx, `select per_day - day_available, minute_available, observed_at
			from keapsync.rate_budget_usage where account_id = $1`, account).Scan(&used, &left, &at); err != nil {
			t.Fatal(err)
		}
		return used, left, at
	}
	if err := r.report(ctx); err != nil {
		t.Fatal(err)
	}
	used, left, first := row()
	if used != 12345 || left != 9876 {
		t.Fatalf("used %d, left this minute %d", used, left)
	}
	var n int
	if err := db.QueryRow(ctx, `select count(*) from keapsync.rate_budget_usage`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d rows (%v): want only the account that exists and has heard from Keap", n, err)
	}
	if err := r.report(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, again := row(); !again.Equal(first) {
		t.Fatal("an unchanged budget was written again")
	}
	s := stats[account]
	s.QuotaAvailable = 237000
	stats[account] = s
	if err := r.report(ctx); err != nil {
		t.Fatal(err)
	}
	if used, _, _ := row(); used != 13000 {
		t.Fatalf("after more calls: used %d", used)
	}
	// Keap paused the account (a 429 storm): the dashboard shows until when.
	paused := time.Date(2026, 11, 27, 12, 0, 30, 0, time.UTC)
	s.PausedUntil = paused
	stats[account] = s
	if err := r.report(ctx); err != nil {
		t.Fatal(err)
	}
	var until time.Time
	if err := db.QueryRow(ctx, `select paused_until from keapsync.rate_budget_usage where account_id = $1`, account).Scan(&until); err != nil || !until.Equal(paused) {
		t.Errorf("paused until %v (%v), want %v", until, err, paused)
	}
}
