package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// DB is what ingest needs of a connection pool.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Worker drains the webhook inbox.
type Worker struct {
	DB DB
	// API returns the Keap client of an account.
	API func(ctx context.Context, account string) (Keap, error)
	// Window lets ids of one account and type gather before they are fetched together.
	Window time.Duration
	// ListThreshold: more changed ids than this are fetched by listing what changed since the
	// oldest delivery instead of one GET per id.
	ListThreshold int
	// MaxAttempts before a failing inbox row goes to the dead-letter table.
	MaxAttempts int
	Log         *slog.Logger
}

func (w *Worker) defaults() {
	if w.ListThreshold == 0 {
		w.ListThreshold = 3
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = 8
	}
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
}

const (
	// The oldest due row names the group; then every due row of that account and type is claimed.
	sqlClaimGroup = `
with first as (
  select i.account_id, i.object_type from keapsync.webhook_inbox i
    join keapsync.accounts a on a.id = i.account_id
   where i.processed_at is null and i.next_attempt_at <= now() and i.received_at <= now() - $1::interval
     and keapsync.account_can_sync(a.id)  -- work of an account that cannot sync waits, kept (account_state says why)
   order by i.received_at limit 1 for update of i skip locked)
select i.id, i.event_key, i.object_ids, i.received_at, i.attempts, i.account_id::text, i.object_type
  from keapsync.webhook_inbox i join first f using (account_id, object_type)
 where i.processed_at is null and i.next_attempt_at <= now()
 order by i.id limit 500
   for update of i skip locked`
	sqlInboxDone  = `update keapsync.webhook_inbox set processed_at = now(), attempts = attempts + 1 where id = any ($1)`
	sqlInboxRetry = `
update keapsync.webhook_inbox
   set attempts = attempts + 1, last_error = $2,
       next_attempt_at = now() + least(interval '1 second' * power(2, attempts), interval '30 minutes')
 where id = any ($1)`
	sqlApply      = `select keapsync.apply_keap_record($1, $2, $3)`
	sqlApplyDel   = `select keapsync.apply_keap_delete($1, $2, $3)`
	sqlDeadLetter = `
insert into keapsync.dead_letters (account_id, source, object_type, keap_id, payload, error, http_status)
values ($1, 'ingest', $2, $3, $4, $5, $6)`
)

type inboxRow struct {
	id         int64
	eventKey   string
	ids        []int64
	receivedAt time.Time
	attempts   int
}

// RunOnce processes one group of due inbox rows (one account and object type). It returns false
// when nothing was due.
func (w *Worker) RunOnce(ctx context.Context) (bool, error) {
	w.defaults()
	tx, err := w.DB.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("drain inbox: %w", err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, sqlClaimGroup, w.Window.String())
	if err != nil {
		return false, fmt.Errorf("claim inbox rows: %w", err)
	}
	var group []inboxRow
	var account, objectType string
	for rows.Next() {
		var r inboxRow
		if err := rows.Scan(&r.id, &r.eventKey, &r.ids, &r.receivedAt, &r.attempts, &account, &objectType); err != nil {
			rows.Close()
			return false, fmt.Errorf("claim inbox rows: %w", err)
		}
		group = append(group, r)
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("claim inbox rows: %w", err)
	}
	if len(group) == 0 {
		return false, nil
	}
	ids := make([]int64, len(group))
	for i, r := range group {
		ids[i] = r.id
	}
	if err := w.process(ctx, tx, account, objectType, group); err != nil {
		// Nothing of this group was applied (the savepoints rolled back with the failure); retry
		// later with backoff, or park the rows once they have failed too often.
		tx.Rollback(ctx)
		if ctx.Err() != nil {
			return true, ctx.Err() // shutting down: the rows stay due, no attempt is counted
		}
		w.Log.Warn("inbox group failed; will retry", "account", account, "type", objectType, "rows", len(group), "err", err)
		return true, w.retry(ctx, account, objectType, group, err)
	}
	if _, err := tx.Exec(ctx, sqlInboxDone, ids); err != nil {
		return true, fmt.Errorf("mark inbox rows done: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return true, fmt.Errorf("commit inbox group: %w", err)
	}
	return true, nil
}

// process fetches the truth for every id the group names and applies it within tx.
func (w *Worker) process(ctx context.Context, tx pgx.Tx, account, objectType string, group []inboxRow) error {
	k, err := kindOf(objectType)
	if err != nil {
		return err
	}
	api, err := w.API(ctx, account)
	if err != nil {
		return err
	}
	ctx = keap.WithPriority(ctx, keap.Live)
	changed, deleted := map[int64]bool{}, map[int64]bool{}
	oldest := group[0].receivedAt
	for _, r := range group {
		for _, id := range r.ids {
			if (Delivery{EventKey: r.eventKey}).IsDelete() {
				deleted[id] = true
			} else {
				changed[id] = true
			}
		}
		if r.receivedAt.Before(oldest) {
			oldest = r.receivedAt
		}
	}
	// Ids Keap says were deleted are checked like any other: a delete is applied only when Keap
	// no longer has the object, so a forged delivery cannot remove data (law 8).
	for id := range deleted {
		changed[id] = true
	}
	found := map[int64]bool{}
	if len(changed) > w.ListThreshold && k.objectType != "tag" {
		// Keap delivers hooks 30-60 s after a change and retries for up to ~40 minutes; listing
		// what changed since well before the oldest delivery catches every id in few calls.
		since := oldest.Add(-time.Hour)
		for rec, err := range k.list(ctx, api, since) {
			if err != nil {
				return fmt.Errorf("list %ss changed since %s: %w", objectType, since.Format(time.RFC3339), err)
			}
			if !changed[rec.id] {
				continue // also changed, but not asked about: the reconcile sweep covers it
			}
			found[rec.id] = true
			if err := w.apply(ctx, tx, account, objectType, rec); err != nil {
				return err
			}
		}
	}
	ids := make([]int64, 0, len(changed))
	for id := range changed {
		if !found[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		rec, err := k.get(ctx, api, id)
		switch {
		case errors.Is(err, keap.ErrNotFound):
			if _, err := tx.Exec(ctx, sqlApplyDel, account, objectType, id); err != nil {
				return fmt.Errorf("apply delete of %s %d: %w", objectType, id, err)
			}
		case permanent(err):
			// One bad record blocks only itself (law 6).
			if _, err := tx.Exec(ctx, sqlDeadLetter, account, objectType, id, nil, err.Error(), statusOf(err)); err != nil {
				return fmt.Errorf("park %s %d: %w", objectType, id, err)
			}
		case err != nil:
			return fmt.Errorf("fetch %s %d: %w", objectType, id, err)
		default:
			if err := w.apply(ctx, tx, account, objectType, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// contention reports an error PostgreSQL raised because of a concurrent transaction (a deadlock
// or a serialization failure), not because of the statement: trying again is the cure.
func contention(err *pgconn.PgError) bool {
	return err.Code == "40P01" || err.Code == "40001"
}

// isContention is contention for any error.
func isContention(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && contention(pgErr)
}

// apply runs the SQL apply in a savepoint: a record the database refuses is parked, not fatal.
func (w *Worker) apply(ctx context.Context, tx pgx.Tx, account, objectType string, rec record) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if _, err := sp.Exec(ctx, sqlApply, account, objectType, rec.raw); err != nil {
		_ = sp.Rollback(ctx)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || contention(pgErr) {
			// Not the record's fault (a lost connection, a deadlock or serialization failure
			// with a concurrent edit): the whole group retries.
			return fmt.Errorf("apply %s %d: %w", objectType, rec.id, err)
		}
		w.Log.Warn("parked a record the database refused", "type", objectType, "id", rec.id, "err", err)
		if _, err := tx.Exec(ctx, sqlDeadLetter, account, objectType, rec.id, rec.raw, pgErr.Error(), nil); err != nil {
			return fmt.Errorf("park %s %d: %w", objectType, rec.id, err)
		}
		return nil
	}
	return sp.Commit(ctx)
}

func (w *Worker) retry(ctx context.Context, account, objectType string, group []inboxRow, cause error) error {
	var retry, park []int64
	for _, r := range group {
		if r.attempts+1 >= w.MaxAttempts {
			park = append(park, r.id)
		} else {
			retry = append(retry, r.id)
		}
	}
	return pgx.BeginFunc(ctx, w.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlInboxRetry, retry, cause.Error()); err != nil {
			return fmt.Errorf("schedule inbox retry: %w", err)
		}
		for _, id := range park {
			if _, err := tx.Exec(ctx, sqlDeadLetter, account, objectType, nil,
				map[string]any{"inbox_id": id}, "gave up after repeated failures: "+cause.Error(), statusOf(cause)); err != nil {
				return fmt.Errorf("park inbox row %d: %w", id, err)
			}
		}
		if len(park) > 0 {
			if _, err := tx.Exec(ctx, sqlInboxDone, park); err != nil {
				return fmt.Errorf("close parked inbox rows: %w", err)
			}
		}
		return nil
	})
}

func statusOf(err error) *int {
	var api *keap.APIError
	if errors.As(err, &api) {
		return &api.Status
	}
	return nil
}

// Run drains the inbox until ctx ends, polling every interval when idle.
func (w *Worker) Run(ctx context.Context, interval time.Duration) error {
	w.defaults()
	for {
		did, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.Log.Error("inbox worker", "err", err)
		}
		if did && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
