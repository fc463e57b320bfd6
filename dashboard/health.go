package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/accountstate"
)

type healthData struct {
	Now                              time.Time
	State                            accountstate.Account // keapsync.account_state: the one truth
	Stalls                           []accountstate.Stall // keapsync.my_stalls: waiting work that does not move
	AccessExpires, RefreshExpires    *time.Time
	HooksVerified, HooksTotal        int64
	LastHook, InboxOldest            *time.Time
	InboxPending, Conflicts, Letters int64
	BackfillDone                     int64
	BackfillTotal                    *int64
	BackfillFinished                 *bool
	BackfillFailed                   bool
	Cursors                          []cursorRow
	Hooks                            []hookRow
	Errors                           []errorRow
	PushPending, PushFailing         int64
	PushOldest                       *time.Time
	Slots                            []slotRow
	SlotsUnknown                     bool
	Budget                           *budgetRow // nil until serve reported one
}

// budgetRow is the account's Keap budget as `keapsync serve` last saw it: nil numbers are
// unknown (no call made yet in that window).
type budgetRow struct {
	PerMinute, MinuteAvailable    *int64
	PerDay, DayAvailable, DayUsed *int64
	DayResets, PausedUntil        *time.Time
	Observed                      time.Time
	Paused                        bool
}

type cursorRow struct {
	ObjectType, Kind string
	Done             int64
	Total            *int64
	HighWater        *time.Time
	Finished         *time.Time
	Updated          time.Time
	Error            *string // the run failed: why (and it is not running)
}

type hookRow struct {
	Event, Status      string
	Verified, Delivery *time.Time
}

type errorRow struct {
	At      time.Time
	Source  string
	Message string
}

type slotRow struct {
	Name   string
	Active bool
	Lag    *int64
}

const (
	sqlHealthStatus = `select access_expires_at, refresh_expires_at, hooks_verified, hooks_total,
       last_hook_at, inbox_pending, inbox_oldest, conflicts_open, dead_letters,
       backfill_rows_done, backfill_rows_total, backfill_done
  from keapsync.sync_status where account_id = $1`
	sqlHealthCursors = `select object_type, kind, rows_done, rows_total, high_water, finished_at, updated_at, last_error
  from keapsync.sync_cursors where account_id = $1 order by object_type, kind`
	sqlHealthHooks = `select event_key, status, verified_at, last_delivery_at
  from keapsync.hook_subscriptions where account_id = $1 order by event_key`
	// Recent errors from the three places they land; each arm uses an index or a tiny table.
	sqlHealthErrors = `select at, source, message from (
  (select last_failed_at as at, 'dead letter (' || source || ' ' || object_type || ')' as source, error as message
     from keapsync.dead_letters where account_id = $1 and status in ('parked', 'retry')
    order by last_failed_at desc limit 10)
  union all
  (select received_at, 'hook inbox (' || event_key || ')', last_error
     from keapsync.webhook_inbox where account_id = $1 and processed_at is null and last_error is not null
    order by received_at desc limit 10)
  union all
  (select first_enqueued_at, 'push (' || object_type || ' #' || local_id || ')', last_error
     from keapsync.push_queue where account_id = $1 and last_error is not null
    order by first_enqueued_at desc limit 10)
  union all
  (select refreshed_at, 'token refresh', last_error
     from keapsync.oauth_tokens where account_id = $1 and last_error is not null)
) e order by at desc limit 10`
	// The push queue holds one row per record with unpushed local changes.
	sqlHealthPush = `select count(*), count(*) filter (where last_error is not null), min(first_enqueued_at)
  from keapsync.push_queue where account_id = $1`
	// The account's own Keap budget (its app's throttle and daily quota), written by serve.
	sqlHealthBudget = `select per_minute, minute_available, per_day, day_available, per_day - day_available,
       day_resets_at, paused_until, observed_at, coalesce(paused_until > $2, false)
  from keapsync.rate_budget_usage where account_id = $1`
	// Slots belong to the database, not an account; readable by everyone in PostgreSQL.
	sqlHealthSlots = `select slot_name::text, active,
       pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(confirmed_flush_lsn, restart_lsn))::bigint
  from pg_replication_slots where database = current_database() order by slot_name`
)

func (s *Server) health(w http.ResponseWriter, r *http.Request, u *user) error {
	v := &view{Title: "Sync health", Nav: "health", User: u, CSRF: u.CSRF}
	d := &healthData{Now: s.cfg.Now()}
	err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		if err := s.loadAccounts(r, tx, v); err != nil || v.Account == nil {
			return err
		}
		ctx, acct := r.Context(), v.Account.ID
		st, _, err := accountstate.Get(ctx, tx, acct)
		if err != nil {
			return err
		}
		d.State = st
		if err := tx.QueryRow(ctx, sqlHealthStatus, acct).Scan(&d.AccessExpires, &d.RefreshExpires,
			&d.HooksVerified, &d.HooksTotal, &d.LastHook, &d.InboxPending, &d.InboxOldest, &d.Conflicts,
			&d.Letters, &d.BackfillDone, &d.BackfillTotal, &d.BackfillFinished); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, sqlHealthPush, acct).Scan(&d.PushPending, &d.PushFailing, &d.PushOldest); err != nil {
			return err
		}
		var b budgetRow
		switch err := tx.QueryRow(ctx, sqlHealthBudget, acct, d.Now).Scan(&b.PerMinute, &b.MinuteAvailable, &b.PerDay,
			&b.DayAvailable, &b.DayUsed, &b.DayResets, &b.PausedUntil, &b.Observed, &b.Paused); {
		case err == nil:
			d.Budget = &b
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("keap budget: %w", err)
		}
		rows, _ := tx.Query(ctx, sqlHealthCursors, acct)
		if d.Cursors, err = pgx.CollectRows(rows, pgx.RowToStructByPos[cursorRow]); err != nil {
			return err
		}
		for _, c := range d.Cursors {
			d.BackfillFailed = d.BackfillFailed || c.Kind == "backfill" && c.Error != nil
		}
		rows, _ = tx.Query(ctx, sqlHealthHooks, acct)
		if d.Hooks, err = pgx.CollectRows(rows, pgx.RowToStructByPos[hookRow]); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, sqlHealthErrors, acct)
		if d.Errors, err = pgx.CollectRows(rows, pgx.RowToStructByPos[errorRow]); err != nil {
			return err
		}
		// A hosted project may restrict the WAL functions: show "unknown", not an error page.
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		if d.Stalls, err = accountstate.StallsOf(ctx, sp, s.cfg.Stalls, acct); err != nil {
			d.SlotsUnknown = true
			return sp.Rollback(ctx)
		}
		rows, _ = sp.Query(ctx, sqlHealthSlots)
		if d.Slots, err = pgx.CollectRows(rows, pgx.RowToStructByPos[slotRow]); err != nil {
			d.SlotsUnknown = true
			return sp.Rollback(ctx)
		}
		return sp.Commit(ctx)
	})
	if err != nil {
		return err
	}
	v.Data = d
	return s.render(w, r, http.StatusOK, "health", v)
}
