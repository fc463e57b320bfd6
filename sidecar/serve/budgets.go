package serve

import (
	"context"
	"fmt"
	"time"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// The dashboard shows each account's Keap budget; the limiter that knows it lives in this
// process, so serve copies it to the database. One statement per round, for the accounts whose
// numbers changed; an account deleted meanwhile is skipped.
const sqlReportBudgets = `
insert into keapsync.rate_budget_usage as u
  (account_id, per_minute, minute_available, per_day, day_available, day_resets_at, paused_until, observed_at)
select b.account_id, b.per_minute, b.minute_available, b.per_day, b.day_available, b.day_resets_at, b.paused_until, now()
  from unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::int[], $6::timestamptz[], $7::timestamptz[])
         as b(account_id, per_minute, minute_available, per_day, day_available, day_resets_at, paused_until)
 where exists (select 1 from keapsync.accounts a where a.id = b.account_id)
on conflict (account_id) do update
   set per_minute = excluded.per_minute, minute_available = excluded.minute_available, per_day = excluded.per_day,
       day_available = excluded.day_available, day_resets_at = excluded.day_resets_at,
       paused_until = excluded.paused_until, observed_at = excluded.observed_at`

// budgetRow is what is stored of one account's budget.
type budgetRow struct {
	perMinute, perDay         int
	minuteAvailable, dayAvail *int
	dayResets, pausedUntil    *time.Time
}

func toBudgetRow(s keap.BudgetStats) budgetRow {
	r := budgetRow{perMinute: s.Limits.PerMinute, perDay: s.Limits.PerDay}
	if s.ThrottleAvailable >= 0 {
		r.minuteAvailable = &s.ThrottleAvailable
	}
	if s.QuotaAvailable >= 0 {
		r.dayAvail = &s.QuotaAvailable
	}
	if !s.QuotaResets.IsZero() {
		r.dayResets = &s.QuotaResets
	}
	if !s.PausedUntil.IsZero() {
		r.pausedUntil = &s.PausedUntil
	}
	return r
}

func (r budgetRow) equal(o budgetRow) bool {
	eqInt := func(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	eqTime := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
	return r.perMinute == o.perMinute && r.perDay == o.perDay && eqInt(r.minuteAvailable, o.minuteAvailable) &&
		eqInt(r.dayAvail, o.dayAvail) && eqTime(r.dayResets, o.dayResets) && eqTime(r.pausedUntil, o.pausedUntil)
}

// budgetReporter remembers what it wrote, so an idle sidecar writes nothing.
type budgetReporter struct {
	db      DB
	budgets func() map[string]keap.BudgetStats
	written map[string]budgetRow
}

// report writes the budgets that changed since the last successful round. A budget Keap has not
// reported on yet (no call made) is left out: its numbers would be the published ones, not Keap's.
func (r *budgetReporter) report(ctx context.Context) error {
	var accounts []string
	var perMinute, minuteAvail, perDay, dayAvail []*int
	var resets, paused []*time.Time
	changed := map[string]budgetRow{}
	for account, s := range r.budgets() {
		if s.ThrottleAvailable < 0 && s.QuotaAvailable < 0 {
			continue
		}
		row := toBudgetRow(s)
		if old, ok := r.written[account]; ok && old.equal(row) {
			continue
		}
		changed[account] = row
		accounts = append(accounts, account)
		perMinute, perDay = append(perMinute, &row.perMinute), append(perDay, &row.perDay)
		minuteAvail, dayAvail = append(minuteAvail, row.minuteAvailable), append(dayAvail, row.dayAvail)
		resets, paused = append(resets, row.dayResets), append(paused, row.pausedUntil)
	}
	if len(accounts) == 0 {
		return nil
	}
	if _, err := r.db.Exec(ctx, sqlReportBudgets, accounts, perMinute, minuteAvail, perDay, dayAvail, resets, paused); err != nil {
		return fmt.Errorf("report keap budgets: %w", err)
	}
	if r.written == nil {
		r.written = map[string]budgetRow{}
	}
	for a, row := range changed {
		r.written[a] = row
	}
	return nil
}
