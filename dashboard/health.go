package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/accountstate"
)

type healthData struct {
	Now              time.Time            `json:"generated_at"`
	State            accountstate.Account `json:"state"`  // keapsync.account_state: the one truth
	Stalls           []accountstate.Stall `json:"stalls"` // keapsync.my_stalls: waiting work that does not move
	Connection       string               `json:"connection"`
	AccessExpires    *time.Time           `json:"access_token_expires_at"`
	RefreshExpires   *time.Time           `json:"refresh_token_expires_at"`
	HooksVerified    int64                `json:"hooks_verified"`
	HooksTotal       int64                `json:"hooks_total"`
	LastHook         *time.Time           `json:"last_hook_at"`
	InboxOldest      *time.Time           `json:"inbox_oldest_at"`
	InboxPending     int64                `json:"inbox_pending"`
	Conflicts        int64                `json:"conflicts_open"`
	Letters          int64                `json:"dead_letters"`
	BackfillDone     int64                `json:"backfill_rows_done"`
	BackfillTotal    *int64               `json:"backfill_rows_total"`
	BackfillFinished *bool                `json:"backfill_finished"`
	BackfillFailed   bool                 `json:"backfill_failed"`
	Cursors          []cursorRow          `json:"cursors"`
	Hooks            []hookRow            `json:"hooks"`
	Errors           []errorRow           `json:"recent_errors"`
	PushPending      int64                `json:"push_pending"`
	PushFailing      int64                `json:"push_failing"`
	PushOldest       *time.Time           `json:"push_oldest_at"`
	Slots            []slotRow            `json:"replication_slots"`
	SlotsUnknown     bool                 `json:"replication_slots_unknown"`
	Budget           *budgetRow           `json:"keap_budget"` // nil until serve reported one
}

// budgetRow is the account's Keap budget as `keapsync serve` last saw it: nil numbers are
// unknown (no call made yet in that window).
type budgetRow struct {
	PerMinute       *int64     `json:"per_minute"`
	MinuteAvailable *int64     `json:"minute_available"`
	PerDay          *int64     `json:"per_day"`
	DayAvailable    *int64     `json:"day_available"`
	DayUsed         *int64     `json:"day_used"`
	DayResets       *time.Time `json:"day_resets_at"`
	PausedUntil     *time.Time `json:"paused_until"`
	Observed        time.Time  `json:"observed_at"`
	Paused          bool       `json:"paused"`
}

type cursorRow struct {
	ObjectType string     `json:"object_type"`
	Kind       string     `json:"kind"`
	Done       int64      `json:"rows_done"`
	Total      *int64     `json:"rows_total"`
	HighWater  *time.Time `json:"high_water"`
	Finished   *time.Time `json:"finished_at"`
	Updated    time.Time  `json:"updated_at"`
	Error      *string    `json:"error"` // the run failed: why (and it is not running)
}

type hookRow struct {
	Event    string     `json:"event"`
	Status   string     `json:"status"`
	Verified *time.Time `json:"verified_at"`
	Delivery *time.Time `json:"last_delivery_at"`
}

type errorRow struct {
	At      time.Time `json:"at"`
	Source  string    `json:"source"`
	Message string    `json:"message"`
}

type slotRow struct {
	Name   string `json:"name"`
	Active bool   `json:"active"`
	Lag    *int64 `json:"lag_bytes"`
}

const (
	sqlHealthStatus = `select connection, access_expires_at, refresh_expires_at, hooks_verified, hooks_total,
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
	var d *healthData
	err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		if err := s.loadAccounts(r, tx, v); err != nil || v.Account == nil {
			return err
		}
		var err error
		d, err = s.loadHealth(r.Context(), tx, v.Account.ID, s.cfg.Now())
		return err
	})
	if err != nil {
		return err
	}
	v.Data = d
	return s.render(w, r, http.StatusOK, "health", v)
}

// loadHealth reads an account's sync health (the Sync health page and /api/v1/.../health).
func (s *Server) loadHealth(ctx context.Context, tx pgx.Tx, acct string, now time.Time) (*healthData, error) {
	d := &healthData{Now: now}
	st, _, err := accountstate.Get(ctx, tx, acct)
	if err != nil {
		return nil, err
	}
	d.State = st
	if err := tx.QueryRow(ctx, sqlHealthStatus, acct).Scan(&d.Connection, &d.AccessExpires, &d.RefreshExpires,
		&d.HooksVerified, &d.HooksTotal, &d.LastHook, &d.InboxPending, &d.InboxOldest, &d.Conflicts,
		&d.Letters, &d.BackfillDone, &d.BackfillTotal, &d.BackfillFinished); err != nil {
		return nil, err
	}
	if err := tx.QueryRow(ctx, sqlHealthPush, acct).Scan(&d.PushPending, &d.PushFailing, &d.PushOldest); err != nil {
		return nil, err
	}
	var b budgetRow
	switch err := tx.QueryRow(ctx, sqlHealthBudget, acct, d.Now).Scan(&b.PerMinute, &b.MinuteAvailable, &b.PerDay,
		&b.DayAvailable, &b.DayUsed, &b.DayResets, &b.PausedUntil, &b.Observed, &b.Paused); {
	case err == nil:
		d.Budget = &b
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("keap budget: %w", err)
	}
	rows, _ := tx.Query(ctx, sqlHealthCursors, acct)
	if d.Cursors, err = pgx.CollectRows(rows, pgx.RowToStructByPos[cursorRow]); err != nil {
		return nil, err
	}
	for _, c := range d.Cursors {
		d.BackfillFailed = d.BackfillFailed || c.Kind == "backfill" && c.Error != nil
	}
	rows, _ = tx.Query(ctx, sqlHealthHooks, acct)
	if d.Hooks, err = pgx.CollectRows(rows, pgx.RowToStructByPos[hookRow]); err != nil {
		return nil, err
	}
	rows, _ = tx.Query(ctx, sqlHealthErrors, acct)
	if d.Errors, err = pgx.CollectRows(rows, pgx.RowToStructByPos[errorRow]); err != nil {
		return nil, err
	}
	// A hosted project may restrict the WAL functions: show "unknown", not an error page.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if d.Stalls, err = accountstate.StallsOf(ctx, sp, s.cfg.Stalls, acct); err != nil {
		d.Slots, d.SlotsUnknown = []slotRow{}, true
		return d, sp.Rollback(ctx)
	}
	rows, _ = sp.Query(ctx, sqlHealthSlots)
	if d.Slots, err = pgx.CollectRows(rows, pgx.RowToStructByPos[slotRow]); err != nil {
		d.Slots, d.SlotsUnknown = []slotRow{}, true
		return d, sp.Rollback(ctx)
	}
	return d, sp.Commit(ctx)
}
