package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// Sweeper runs backfill (everything, resumable) and reconcile (what changed since the last
// high-water mark, so a lost hook delays a change by at most one sweep).
type Sweeper struct {
	DB       DB
	API      func(ctx context.Context, account string) (Keap, error)
	PageSize int // records applied per transaction (default 1000)
	// Appliers is how many pages are applied at once, each in its own transaction (default 2).
	Appliers int
	Progress io.Writer // where progress goes; nil for none
	Log      *slog.Logger
	// Overlap re-reads this much before a reconcile's high-water mark, for changes Keap
	// stamped slightly out of order.
	Overlap time.Duration
}

const (
	// A row shows one run, what really ran: a reconcile, or a backfill after a finished one,
	// starts a new run from zero (re-running a backfill must not add its rows to the last
	// run's); an unfinished backfill resumes with its count. The high-water mark carries over.
	sqlCursor = `
insert into keapsync.sync_cursors (account_id, object_type, kind, started_at)
values ($1, $2, $3, now())
on conflict (account_id, object_type, kind) do update
   set rows_done = case when ` + newRun + ` then 0 else keapsync.sync_cursors.rows_done end,
       rows_total = case when ` + newRun + ` then null else keapsync.sync_cursors.rows_total end,
       started_at = case when ` + newRun + ` then now() else coalesce(keapsync.sync_cursors.started_at, now()) end,
       finished_at = null, last_error = null, failed_at = null, updated_at = now()
returning high_water, rows_done, finished_at`
	newRun        = `(excluded.kind = 'reconcile' or keapsync.sync_cursors.finished_at is not null)`
	sqlCursorFail = `
update keapsync.sync_cursors set last_error = $4, failed_at = now(), updated_at = now()
 where account_id = $1 and object_type = $2 and kind = $3`
	sqlCursorAdvance = `
update keapsync.sync_cursors
   set high_water = coalesce(greatest(high_water, $4), high_water), rows_done = rows_done + $5,
       rows_total = coalesce($6, rows_total), updated_at = now()
 where account_id = $1 and object_type = $2 and kind = $3`
	sqlCursorFinish = `
update keapsync.sync_cursors set finished_at = now(), updated_at = now()
 where account_id = $1 and object_type = $2 and kind = $3`
	sqlBackfillHighWater = `
select high_water from keapsync.sync_cursors where account_id = $1 and object_type = $2 and kind = 'backfill'`
	sqlStaging      = `create temp table if not exists keap_staging (raw jsonb not null) on commit delete rows`
	sqlApplyStaging = `select keapsync.apply_keap_batch($1, $2, (select jsonb_agg(raw) from pg_temp.keap_staging))`
)

func (s *Sweeper) defaults() {
	if s.PageSize == 0 {
		s.PageSize = 1000
	}
	if s.Appliers == 0 {
		s.Appliers = 2
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Overlap == 0 {
		s.Overlap = 5 * time.Minute
	}
}

// Backfill pages through every object of the types given, resuming from its checkpoint.
func (s *Sweeper) Backfill(ctx context.Context, account string, objectTypes []string) error {
	return s.sweep(ctx, account, objectTypes, "backfill")
}

// Reconcile applies what changed in Keap since the last sweep.
func (s *Sweeper) Reconcile(ctx context.Context, account string, objectTypes []string) error {
	return s.sweep(ctx, account, objectTypes, "reconcile")
}

func (s *Sweeper) sweep(ctx context.Context, account string, objectTypes []string, kindName string) error {
	s.defaults()
	api, err := s.API(ctx, account)
	if err != nil {
		return err
	}
	// Backfill yields to live work (law 7); a reconcile is live work's safety net.
	prio := keap.Background
	if kindName == "reconcile" {
		prio = keap.Live
	}
	ctx = keap.WithPriority(ctx, prio)
	for _, t := range objectTypes {
		k, err := kindOf(t)
		if err != nil {
			return err
		}
		if err := s.sweepOne(ctx, api, account, k, kindName); err != nil {
			if ctx.Err() == nil {
				// The row says the run failed and why, not "running" (an interrupted one
				// simply resumes).
				if _, ferr := s.DB.Exec(context.WithoutCancel(ctx), sqlCursorFail, account, k.objectType, kindName, err.Error()); ferr != nil {
					s.Log.Warn("record failed sweep", "account", account, "err", ferr)
				}
			}
			return fmt.Errorf("%s %ss of account %s: %w", kindName, t, account, err)
		}
	}
	return nil
}

func (s *Sweeper) sweepOne(ctx context.Context, api Keap, account string, k kind, kindName string) error {
	var highWater *time.Time
	var done int64
	var finished *time.Time
	if err := s.DB.QueryRow(ctx, sqlCursor, account, k.objectType, kindName).Scan(&highWater, &done, &finished); err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	var since time.Time
	if highWater != nil {
		since = *highWater
	}
	if kindName == "reconcile" {
		if highWater == nil {
			// First reconcile: start where the backfill got to.
			_ = s.DB.QueryRow(ctx, sqlBackfillHighWater, account, k.objectType).Scan(&highWater)
			if highWater != nil {
				since = *highWater
			}
		}
		if !since.IsZero() {
			since = since.Add(-s.Overlap)
		}
	}
	var total int64
	if k.count != nil && s.Progress != nil {
		// One extra call buys an ETA; a failure here only costs the ETA.
		if n, err := k.count(ctx, api, since); err == nil {
			total = done + n
		}
	}
	bar := newProgress(s.Progress, kindName+" "+k.objectType+"s", total)
	bar.resume(done)
	fetch := func(ctx context.Context, out chan<- numberedPage) error {
		return s.fetchPages(ctx, api, k, since, out)
	}
	apply := func(ctx context.Context, page []record) error {
		return s.applyPage(ctx, account, k.objectType, page)
	}
	err := applyInOrder(ctx, s.Appliers, fetch, apply, func(n int, newest *time.Time) error {
		// The checkpoint advances over the applied pages in listing order only, so a crash
		// re-applies at most the pages that were in flight: harmless, applying is idempotent.
		if _, err := s.DB.Exec(ctx, sqlCursorAdvance, account, k.objectType, kindName, newest, n, nil); err != nil {
			return fmt.Errorf("record checkpoint: %w", err)
		}
		bar.add(n)
		return nil
	})
	if err != nil {
		return err
	}
	bar.finish()
	if _, err := s.DB.Exec(ctx, sqlCursorFinish, account, k.objectType, kindName); err != nil {
		return fmt.Errorf("record checkpoint: %w", err)
	}
	return nil
}

// numberedPage is a page of the listing and its place in it.
type numberedPage struct {
	seq     int
	records []record
}

// pageDone is an applied (or failed) page.
type pageDone struct {
	seq    int
	n      int
	newest *time.Time
	err    error
}

// applyInOrder applies the pages fetch lists, `appliers` at once while the next pages are
// fetched: Keap's latency and the database's work overlap, and the database's work spreads over
// its cores. done is called for each applied page in listing order, never for a page after one
// that failed; the first error stops everything.
func applyInOrder(ctx context.Context, appliers int,
	fetch func(ctx context.Context, out chan<- numberedPage) error,
	apply func(ctx context.Context, page []record) error,
	done func(n int, newest *time.Time) error) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	pages := make(chan numberedPage, appliers)
	results := make(chan pageDone, appliers)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(pages)
		fetchErr <- fetch(ctx, pages)
	}()
	var wg sync.WaitGroup
	for range appliers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range pages {
				err := apply(ctx, p.records)
				results <- pageDone{seq: p.seq, n: len(p.records), newest: newestOf(p.records), err: err}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	// Pages finish out of order; report them in order.
	var firstErr error
	waiting := map[int]pageDone{}
	next := 0
	for r := range results {
		if firstErr != nil {
			continue // draining after a failure
		}
		waiting[r.seq] = r
		for p, ok := waiting[next]; ok; p, ok = waiting[next] {
			delete(waiting, next)
			next++
			if p.err == nil {
				p.err = done(p.n, p.newest)
			}
			if p.err != nil {
				firstErr = p.err
				stop()
				break
			}
		}
	}
	if firstErr != nil {
		return firstErr
	}
	if err := <-fetchErr; err != nil {
		return err
	}
	return ctx.Err()
}

// fetchPages lists records into pages of s.PageSize until the listing ends.
func (s *Sweeper) fetchPages(ctx context.Context, api Keap, k kind, since time.Time, out chan<- numberedPage) error {
	seq := 0
	page := make([]record, 0, s.PageSize)
	send := func() bool {
		select {
		case out <- numberedPage{seq: seq, records: page}:
			seq++
			page = make([]record, 0, s.PageSize)
			return true
		case <-ctx.Done():
			return false
		}
	}
	for rec, err := range k.list(ctx, api, since) {
		if err != nil {
			return err
		}
		page = append(page, rec)
		if len(page) == s.PageSize && !send() {
			return ctx.Err()
		}
	}
	if len(page) > 0 && !send() {
		return ctx.Err()
	}
	return nil
}

func newestOf(page []record) *time.Time {
	var newest *time.Time
	for _, r := range page {
		if !r.modified.IsZero() && (newest == nil || r.modified.After(*newest)) {
			t := r.modified
			newest = &t
		}
	}
	return newest
}

// applyPage applies a page set-based in one transaction. Concurrent pages may deadlock on a
// shared row (a tag both create): PostgreSQL picks one, and it is retried. Any other refusal is
// applied record by record, so only the bad record is parked (law 6).
func (s *Sweeper) applyPage(ctx context.Context, account, objectType string, page []record) error {
	err := s.applySetBased(ctx, account, objectType, page)
	for attempt := 1; attempt < 5 && isContention(err); attempt++ {
		err = s.applySetBased(ctx, account, objectType, page)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	s.Log.Warn("page refused; applying record by record", "type", objectType, "err", err)
	w := &Worker{DB: s.DB, Log: s.Log}
	return pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		for _, r := range page {
			if err := w.apply(ctx, tx, account, objectType, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// applySetBased copies a page into a staging table and applies it with one call.
func (s *Sweeper) applySetBased(ctx context.Context, account, objectType string, page []record) error {
	return pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlStaging); err != nil {
			return fmt.Errorf("staging table: %w", err)
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"keap_staging"}, []string{"raw"},
			pgx.CopyFromSlice(len(page), func(i int) ([]any, error) { return []any{json.RawMessage(page[i].raw)}, nil }))
		if err != nil {
			return fmt.Errorf("copy page into staging: %w", err)
		}
		_, err = tx.Exec(ctx, sqlApplyStaging, account, objectType)
		return err
	})
}

const (
	sqlLocalKeapIDs = `
select s.keap_id from keapsync.sync_state s
 where s.account_id = $1 and s.object_type = $2 and s.keap_id is not null and s.local_deleted_at is null`
)

// SweepDeletes compares the ids Keap has with the ids synced here and applies the deletes no hook
// reported. Every candidate is confirmed with a GET first, so an object created in Keap during
// the listing is never removed. Returns how many deletes it applied.
func (s *Sweeper) SweepDeletes(ctx context.Context, account string, objectTypes []string) (int, error) {
	s.defaults()
	api, err := s.API(ctx, account)
	if err != nil {
		return 0, err
	}
	ctx = keap.WithPriority(ctx, keap.Background)
	total := 0
	for _, t := range objectTypes {
		k, err := kindOf(t)
		if err != nil {
			return total, err
		}
		rows, err := s.DB.Query(ctx, sqlLocalKeapIDs, account, t)
		if err != nil {
			return total, fmt.Errorf("read synced %s ids: %w", t, err)
		}
		local, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return total, fmt.Errorf("read synced %s ids: %w", t, err)
		}
		inKeap := make(map[int64]bool, len(local))
		for rec, err := range k.list(ctx, api, time.Time{}) {
			if err != nil {
				return total, fmt.Errorf("list %ss: %w", t, err)
			}
			inKeap[rec.id] = true
		}
		for _, id := range local {
			if inKeap[id] {
				continue
			}
			if _, err := k.get(ctx, api, id); !errors.Is(err, keap.ErrNotFound) {
				if err != nil {
					return total, fmt.Errorf("confirm %s %d is gone: %w", t, id, err)
				}
				continue // it exists after all
			}
			if _, err := s.DB.Exec(ctx, sqlApplyDel, account, t, id); err != nil {
				return total, fmt.Errorf("apply delete of %s %d: %w", t, id, err)
			}
			total++
		}
	}
	return total, nil
}
