package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"slices"
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
	// Fetchers is how many pages are fetched at once from a listing Keap lets us cut into
	// ranges ahead of time (default 16: at Keap's ~1 s per page, well inside an OAuth app's 25
	// calls a second; 1 fetches one page at a time). The calls wait on the
	// account's budget like any other, at the sweep's priority.
	Fetchers int
	// ListLimit is the records asked of Keap per call where ranges are fetched at once
	// (default Keap's largest page, 1000).
	ListLimit int
	Progress  io.Writer // where progress goes; nil for none
	Log       *slog.Logger
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
returning high_water, rows_done, finished_at, clock_timestamp()`
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
update keapsync.sync_cursors
   set finished_at = now(), updated_at = now(), high_water = coalesce(greatest(high_water, $4), high_water)
 where account_id = $1 and object_type = $2 and kind = $3`
	sqlBackfillHighWater = `
select high_water from keapsync.sync_cursors where account_id = $1 and object_type = $2 and kind = 'backfill'`
	// Orders whose payments are here and whose totals Keap has not changed: their payments need
	// no fetch. (Payments cannot change without total_paid or refund_total changing with them.)
	sqlPaymentsCurrent = `
select x.id from unnest($2::bigint[], $3::numeric[], $4::numeric[]) x(id, paid, refunded)
  join keap.orders o on o.account_id = $1 and o.keap_id = x.id
 where o.total_paid = x.paid and coalesce(o.refund_total, 0) = x.refunded
   and exists (select 1 from keap.order_payments p where p.order_id = o.id)`
	// Records whose Keap JSON is exactly what is stored (payments and v2's custom fields aside,
	// which a v1 listing lacks).
	sqlUnchanged = `select keapsync.unchanged_keap_ids($1, $2, $3::bigint[], $4::text[])`
	// The records a checkpoint's page applied at the checkpoint's own stamp.
	sqlAtMark = `
select keap_id from keapsync.sync_state
 where account_id = $1 and object_type = $2 and keap_modified = $3 and keap_id is not null`
	sqlCursorRestart = `
update keapsync.sync_cursors set rows_done = 0, updated_at = now()
 where account_id = $1 and object_type = $2 and kind = $3`
	// The page goes as one jsonb[] parameter: the server parses each record once, straight into
	// the array the apply walks (no staging table, no jsonb_agg of the page to take apart again).
	sqlApplyPage = `select keapsync.apply_keap_page($1, $2, $3::jsonb[])`
	// The sweep's listing was asked for after $1 (keapsync.set_asked_at).
	sqlAskedAt = `select keapsync.set_asked_at($1)`
)

// The Sweeper's defaults and bounds, for a caller that shows or checks them (command-line flags).
const (
	DefaultAppliers = 2
	DefaultFetchers = 16
	MaxListLimit    = listLimit // Keap's largest v1 page, also the default
)

func (s *Sweeper) defaults() {
	if s.PageSize == 0 {
		s.PageSize = 1000
	}
	if s.Appliers == 0 {
		s.Appliers = DefaultAppliers
	}
	if s.Fetchers == 0 {
		s.Fetchers = DefaultFetchers
	}
	if s.ListLimit == 0 {
		s.ListLimit = listLimit
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
	// Listings walked by offset (orders) fetch pages ahead as far as ranges are fetched at once.
	ctx = keap.WithPrefetch(ctx, s.Fetchers)
	ks, err := s.kindsToSync(ctx, account, objectTypes)
	if err != nil {
		return err
	}
	// Each type is swept whatever happened to the others: a type Keap cannot list today (or a
	// database failure on its page) must not stop the rest. Every failure is reported.
	var errs []error
	for _, k := range ks {
		// The model is read beside the records, not before them: against a Keap answering in
		// about a second, reading it first kept every sweep of the type a round trip from its
		// first page. Records are stored by field id, so they need not wait for it.
		model := make(chan error, 1)
		if k.model != "" {
			go func() { model <- s.refreshModel(ctx, api, account, k) }()
		} else {
			model <- nil
		}
		err := s.sweepOne(ctx, api, account, k, kindName)
		// A model Keap cannot serve today leaves the views by label as they were; the records
		// are swept all the same.
		if merr := <-model; merr != nil {
			if ctx.Err() != nil {
				return errors.Join(append(errs, merr)...)
			}
			s.Log.Warn("custom-field model not refreshed; the records were swept", "type", k.objectType,
				"account", account, "err", merr)
			errs = append(errs, fmt.Errorf("%s %ss of account %s: %w", kindName, k.objectType, account, merr))
		}
		if err != nil {
			if ctx.Err() != nil {
				return errors.Join(append(errs, fmt.Errorf("%s %ss of account %s: %w", kindName, k.objectType, account, err))...)
			}
			// The row says the run failed and why, not "running".
			if _, ferr := s.DB.Exec(ctx, sqlCursorFail, account, k.objectType, kindName, err.Error()); ferr != nil {
				s.Log.Warn("record failed sweep", "account", account, "err", ferr)
			}
			s.Log.Warn("sweep of one object type failed; continuing with the others", "kind", kindName,
				"type", k.objectType, "account", account, "err", err)
			errs = append(errs, fmt.Errorf("%s %ss of account %s: %w", kindName, k.objectType, account, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Sweeper) sweepOne(ctx context.Context, api Keap, account string, k kind, kindName string) error {
	var highWater *time.Time
	var done int64
	var finished *time.Time
	// asked: the database's time before any page of this sweep is asked for. A version of the
	// same stamp applied after it (a hook's, a push's answer) may be the newer one.
	var asked time.Time
	if err := s.DB.QueryRow(ctx, sqlCursor, account, k.objectType, kindName).Scan(&highWater, &done, &finished, &asked); err != nil {
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
		if k.reconcileAll {
			since = time.Time{}
		}
	}
	if kindName == "backfill" && finished == nil && done > 0 && !k.ascending {
		// An interrupted backfill of a listing without a usable checkpoint starts over; so does
		// its count, or the progress would promise more rows than there are.
		if _, err := s.DB.Exec(ctx, sqlCursorRestart, account, k.objectType, kindName); err != nil {
			return fmt.Errorf("restart checkpoint: %w", err)
		}
		done = 0
	}
	// A resumed walk starts at its checkpoint, inclusive: the records stamped exactly there were
	// applied and counted before, and are skipped so the run counts each record once.
	var atMark map[int64]bool
	if kindName == "backfill" && finished == nil && done > 0 && k.ascending && highWater != nil {
		rows, err := s.DB.Query(ctx, sqlAtMark, account, k.objectType, *highWater)
		if err != nil {
			return fmt.Errorf("read records at the checkpoint: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("read records at the checkpoint: %w", err)
		}
		atMark = make(map[int64]bool, len(ids))
		for _, id := range ids {
			atMark[id] = true
		}
	}
	bar := newProgress(s.Progress, kindName+" "+k.objectType+"s", 0)
	bar.resume(done)
	counted := make(chan struct{})
	if k.count != nil && s.Progress != nil {
		// One extra call buys an ETA. It is asked beside the listing, not before it (the bar
		// shows "?" until it is answered), and a failure only costs the ETA.
		totals := make(chan int64, 1)
		bar.totals = totals
		go func() {
			defer close(counted)
			if n, err := k.count(ctx, api, since); err == nil {
				totals <- done + max(0, n-int64(len(atMark)))
			}
		}()
	} else {
		close(counted)
	}
	defer func() { <-counted }()
	fetch := func(ctx context.Context, out chan<- numberedPage) error {
		if k.between != nil && s.Fetchers > 1 {
			// A backfill from the start asks for the pages after the first beside it.
			ahead := 0
			if kindName == "backfill" && since.IsZero() && len(atMark) == 0 {
				ahead = s.Fetchers - 1
			}
			return s.fetchSlices(ctx, api, k, since, atMark, ahead, out)
		}
		return s.fetchPages(ctx, without(k.list(ctx, api, since), since, atMark), 0, out)
	}
	apply := func(ctx context.Context, page []record) error {
		if k.reconcileAll {
			var err error
			if page, err = s.changedOnly(ctx, account, k.objectType, page); err != nil {
				return err
			}
		}
		if k.objectType == "order" {
			var err error
			if page, err = s.withPayments(ctx, api, account, k, page); err != nil {
				return err
			}
		}
		if len(page) == 0 {
			return nil
		}
		page, seen, err := withCustomFields(ctx, s.Log, api, k, page, time.Time{})
		if err != nil {
			return err
		}
		if err := seen.store(ctx, s.DB, s.Log, account, k.objectType); err != nil {
			return err
		}
		return s.applyPage(ctx, account, k.objectType, page, &asked)
	}
	// The newest stamp applied. A checkpoint never moves past rows not yet applied: for a listing
	// in Keap's clock order it follows each page (in listing order), else it moves at the end.
	var newestAll *time.Time
	applied := 0
	err := applyInOrder(ctx, s.Appliers, fetch, apply, func(n int, newest *time.Time) error {
		applied += n
		if newest != nil && (newestAll == nil || newest.After(*newestAll)) {
			newestAll = newest
		}
		mark := newest
		if !k.ascending {
			mark = nil
		}
		// A crash re-applies at most the pages that were in flight: harmless, applying is idempotent.
		if _, err := s.DB.Exec(ctx, sqlCursorAdvance, account, k.objectType, kindName, mark, n, nil); err != nil {
			return fmt.Errorf("record checkpoint: %w", err)
		}
		bar.add(n)
		return nil
	})
	if err != nil {
		return err
	}
	<-counted
	bar.finish()
	if _, err := s.DB.Exec(ctx, sqlCursorFinish, account, k.objectType, kindName, newestAll); err != nil {
		return fmt.Errorf("record checkpoint: %w", err)
	}
	if kindName == "backfill" && applied > 0 {
		// Statistics only: a backfill that could not analyze still brought everything in.
		if _, err := s.DB.Exec(ctx, sqlAnalyzeSynced, k.objectType); err != nil {
			s.Log.Warn("could not analyze what the backfill filled; autovacuum will", "type", k.objectType, "err", err)
		}
	}
	return nil
}

// sqlAnalyzeSynced gives the planner statistics of the records a backfill brought, before
// autovacuum would (see keapsync.analyze_synced).
const sqlAnalyzeSynced = `select keapsync.analyze_synced($1)`

// changedOnly drops the records whose Keap JSON is exactly what is stored: a walk over every
// order then costs the database one query per page, not one apply per order.
func (s *Sweeper) changedOnly(ctx context.Context, account, objectType string, page []record) ([]record, error) {
	ids, raws := make([]int64, len(page)), make([]string, len(page))
	for i, r := range page {
		ids[i], raws[i] = r.id, string(r.raw)
	}
	rows, err := s.DB.Query(ctx, sqlUnchanged, account, objectType, ids, raws)
	if err != nil {
		return nil, fmt.Errorf("compare with stored %ss: %w", objectType, err)
	}
	same, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !contention(pgErr) {
		// A record PostgreSQL cannot read (say, a NUL escape): skip nothing, and let the apply
		// judge and park that record alone.
		return page, nil
	}
	if err != nil {
		return nil, fmt.Errorf("compare with stored %ss: %w", objectType, err)
	}
	if len(same) == 0 {
		return page, nil
	}
	skip := make(map[int64]bool, len(same))
	for _, id := range same {
		skip[id] = true
	}
	out := make([]record, 0, len(page)-len(same))
	for _, r := range page {
		if !skip[r.id] {
			out = append(out, r)
		}
	}
	return out, nil
}

// withPayments adds payments to the page's orders (see withPayments in kinds.go): none for an
// order nothing was paid on, read for one whose totals changed or whose payments are not here
// yet, and left out (kept as they are) for the rest. They are read as for a batch of hooks
// (completeListed): 500 orders' a call, order by order only when Keap's listing is unusable,
// so a sweep costs neither a call per paid order nor a way of reading payments of its own.
func (s *Sweeper) withPayments(ctx context.Context, api Keap, account string, k kind, page []record) ([]record, error) {
	ids, paid, refunded := make([]int64, 0, len(page)), make([]float64, 0, len(page)), make([]float64, 0, len(page))
	for _, r := range page {
		if r.hasPayments() {
			ids = append(ids, r.id)
			paid = append(paid, float64(r.order.TotalPaid))
			refunded = append(refunded, float64(r.order.RefundTotal))
		}
	}
	current := map[int64]bool{}
	if len(ids) > 0 {
		rows, err := s.DB.Query(ctx, sqlPaymentsCurrent, account, ids, paid, refunded)
		if err != nil {
			return nil, fmt.Errorf("read stored order totals: %w", err)
		}
		have, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("read stored order totals: %w", err)
		}
		for _, id := range have {
			current[id] = true
		}
	}
	return onSome(page, func(r record) bool { return !current[r.id] }, func(stale []record) ([]record, error) {
		return completeListed(ctx, s.Log, api, k, stale)
	})
}

// numberedPage is a page of the listing and its place in it: page seq of slice (a range of the
// listing fetched on its own, see fetchSlices). end marks a slice's last page, which may be empty.
type numberedPage struct {
	slice, seq int
	end        bool
	records    []record
}

// pageDone is an applied (or failed) page.
type pageDone struct {
	slice, seq int
	end        bool
	n          int
	newest     *time.Time
	err        error
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
				var err error
				if len(p.records) > 0 {
					err = apply(ctx, p.records)
				}
				results <- pageDone{slice: p.slice, seq: p.seq, end: p.end, n: len(p.records), newest: newestOf(p.records), err: err}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	// Pages finish out of order; report them in order: a slice's pages, then the next slice's.
	type place struct{ slice, seq int }
	var firstErr error
	waiting := map[place]pageDone{}
	next := place{}
	for r := range results {
		if firstErr != nil {
			continue // draining after a failure
		}
		waiting[place{r.slice, r.seq}] = r
		for p, ok := waiting[next]; ok; p, ok = waiting[next] {
			delete(waiting, next)
			next.seq++
			if p.end {
				next = place{slice: next.slice + 1}
			}
			if p.err == nil && p.n > 0 {
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

// fetchPages lists records into pages of s.PageSize until the listing ends, as the given slice;
// its last page is marked as the slice's end.
func (s *Sweeper) fetchPages(ctx context.Context, list iter.Seq2[record, error], slice int, out chan<- numberedPage) error {
	return s.fetchPagesListed(ctx, list, slice, out, func() {})
}

// fetchPagesListed is fetchPages calling listed once Keap has been read to the listing's end (or
// the listing failed), before the last page is handed on: the apply may hold that page up for a
// while, and what waits for the listing need not wait for the apply too.
func (s *Sweeper) fetchPagesListed(ctx context.Context, list iter.Seq2[record, error], slice int, out chan<- numberedPage, listed func()) error {
	var once sync.Once
	defer once.Do(listed)
	seq := 0
	page := make([]record, 0, s.PageSize)
	send := func(end bool) bool {
		select {
		case out <- numberedPage{slice: slice, seq: seq, end: end, records: page}:
			seq++
			page = make([]record, 0, s.PageSize)
			return true
		case <-ctx.Done():
			return false
		}
	}
	for rec, err := range list {
		if err != nil {
			return err
		}
		page = append(page, rec)
		if len(page) == s.PageSize && !send(false) {
			return ctx.Err()
		}
	}
	once.Do(listed)
	if !send(true) {
		return ctx.Err()
	}
	return nil
}

// fetchSlices fetches a listing in Keap's clock order s.Fetchers ranges at a time, so a backfill
// waits on Keap's latency once per s.Fetchers pages instead of once per page. The listing's first
// page is asked for beside its newest end and size (span), so cutting it costs no round trip of
// its own: the first range is what that page holds before its last whole second (every record
// stamped earlier came before it in the listing), and a listing that fits in the page is done in
// that one call. A backfill from the start also asks, in that first round, for the pages after
// it by offset: each gives entire the range strictly inside its first and last whole seconds
// (what is stamped there sits between those two records in the listing, however a record that
// moved meanwhile shifted the offsets). The pages overlap a little, so these ranges usually
// meet; where they do not, the seconds between them are a range of their own to walk. The
// stamps from there to the newest are cut into ranges of whole seconds
// (so a Keap that reads since/until at a coarser precision than it stamps still splits at the
// same place), each walked on its own by the keyset listing (since inclusive, until exclusive).
// The last range is open-ended and walked only after every other one has been read from Keap: a
// record modified during the sweep moves there (its new stamp is past every boundary), and
// walking that range last meets it, as a single walk would. It waits for the other ranges'
// reading, not for their pages' apply: the apply is usually the slower side, and Keap's latency
// on this last call then overlaps it. Pages are reported in listing order, so the checkpoint
// stays exact.
func (s *Sweeper) fetchSlices(ctx context.Context, api Keap, k kind, since time.Time, atMark map[int64]bool, ahead int, out chan<- numberedPage) error {
	var newest time.Time
	var n int
	var spanErr error
	spanned := make(chan struct{})
	go func() {
		defer close(spanned)
		newest, n, spanErr = k.span(ctx, api, since)
	}()
	later := s.pagesAhead(ctx, api, k, ahead)
	head, whole, err := firstPage(without(k.between(ctx, api, since, time.Time{}, s.ListLimit), since, atMark), s.ListLimit)
	<-spanned
	pages := later()
	if err != nil {
		return err
	}
	if whole {
		return s.fetchPages(ctx, recordsOf(head), 0, out)
	}
	// The head's records stamped before its last whole second are the first range, entire.
	cut := head[len(head)-1].modified.Truncate(time.Second)
	first := head[:0:0]
	for _, r := range head {
		if r.modified.Before(cut) {
			first = append(first, r)
		}
	}
	if len(first) == 0 {
		// A page stamped within one second cannot be cut: walk the listing in one piece.
		return s.fetchPages(ctx, without(k.list(ctx, api, since), since, atMark), 0, out)
	}
	if spanErr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("measure the listing: %w", spanErr)
		}
		// Not knowing the ends costs only speed: after the ranges read already, the rest is one
		// range (no size, no bounds), walked a page at a time.
		s.Log.Warn("cannot measure the listing; fetching one page at a time", "type", k.objectType, "err", spanErr)
		n = 0
	}
	pieces, known := piecesOf(cut, first, pages)
	for _, b := range sliceBounds(pieces[len(pieces)-1].end, newest, n-known, s.ListLimit, s.Fetchers) {
		pieces = append(pieces, piece{end: b})
	}
	return s.fetchPieces(ctx, api, k, since, atMark, pieces, out)
}

// A piece is one range of a listing in Keap's clock order: what is stamped from the previous
// piece's end (the sweep's since, for the first) up to end. read says records holds all of it.
type piece struct {
	end     time.Time
	records []record
	read    bool
}

// pagesAhead asks for the n pages after the listing's first, by offset, all at once; the
// function it returns waits for them. Each starts a tenth of a page before the previous one
// ends: the ranges they hold entire then meet (piecesOf) unless a second holds that many
// records. A page past the end comes back empty; one Keap did not give whole (an error, an
// item that does not decode) comes back nil: its range is walked later like any other.
func (s *Sweeper) pagesAhead(ctx context.Context, api Keap, k kind, n int) func() [][]record {
	if n <= 0 || k.page == nil {
		return func() [][]record { return nil }
	}
	step := s.ListLimit - max(1, s.ListLimit/10)
	pages := make([][]record, n)
	var wg sync.WaitGroup
	for i := range pages {
		wg.Go(func() {
			var err error
			if pages[i], err = k.page(ctx, api, (i+1)*step, s.ListLimit); err != nil && ctx.Err() == nil {
				s.Log.Debug("a page asked for ahead failed; its range is walked instead", "type", k.objectType, "err", err)
			}
		})
	}
	return func() [][]record { wg.Wait(); return pages }
}

// piecesOf turns the first range (up to cut) and the pages read ahead into pieces in clock
// order, and counts the records they hold. A page holds entire the range strictly inside its
// first and last whole seconds: the part of it after the last piece's end is the next piece,
// and if it starts after that end, the seconds between are a piece still to be walked. A page
// not given whole (nil), that adds nothing (its inside ends before the last piece does), or
// not in clock order (a Keap that ignored the order asked for) is left out: its range is walked.
func piecesOf(cut time.Time, first []record, pages [][]record) ([]piece, int) {
	pieces := []piece{{end: cut, records: first, read: true}}
	known := len(first)
	for _, p := range pages {
		if p == nil {
			continue // not given whole: its range is walked
		}
		if len(p) == 0 {
			break // the listing ends here: the rest is walked
		}
		lo := p[0].modified.Truncate(time.Second).Add(time.Second)
		hi := p[len(p)-1].modified.Truncate(time.Second)
		end := pieces[len(pieces)-1].end
		if !end.Before(hi) || !lo.Before(hi) || !slices.IsSortedFunc(p, func(a, b record) int { return a.modified.Compare(b.modified) }) {
			continue
		}
		if lo.After(end) {
			pieces = append(pieces, piece{end: lo})
			end = lo
		}
		var inside []record
		for _, r := range p {
			if !r.modified.Before(end) && r.modified.Before(hi) {
				inside = append(inside, r)
			}
		}
		pieces = append(pieces, piece{end: hi, records: inside, read: true})
		known += len(inside)
	}
	return pieces, known
}

// fetchPieces walks the pieces not read yet, at most s.Fetchers ahead of the apply, then the open range after
// the last piece (see fetchSlices), handing every piece's pages on in clock order.
func (s *Sweeper) fetchPieces(ctx context.Context, api Keap, k kind, since time.Time, atMark map[int64]bool, pieces []piece, out chan<- numberedPage) error {
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg, listed sync.WaitGroup
	var once sync.Once
	var firstErr error
	// A piece holds a place while Keap is being read for it (a piece read already: from the
	// start) and until its pages are handed to the apply. So at most s.Fetchers ranges are read
	// at once, the next ones are asked for while the apply catches up (it is usually the slower
	// side), and what is held ahead of the apply stays within s.Fetchers pieces (about as many
	// pages), however large the account. The pages read ahead fill the places first; the ranges
	// after them are asked for as the apply takes the first pages.
	place := make(chan struct{}, s.Fetchers)
	for i, pc := range pieces {
		select {
		case place <- struct{}{}:
		case <-gctx.Done():
		}
		if gctx.Err() != nil {
			break
		}
		list := recordsOf(pc.records)
		if !pc.read {
			list = without(k.between(gctx, api, pieces[i-1].end, pc.end, s.ListLimit), since, atMark)
		}
		wg.Add(1)
		listed.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-place }()
			if err := s.fetchPagesListed(gctx, list, i, out, listed.Done); err != nil {
				once.Do(func() { firstErr = err; stop() })
			}
		}()
	}
	listed.Wait()
	var lastErr error
	if gctx.Err() == nil {
		last := len(pieces)
		if lastErr = s.fetchPages(gctx, k.between(gctx, api, pieces[last-1].end, time.Time{}, s.ListLimit), last, out); lastErr != nil {
			stop()
		}
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return lastErr
}

// firstPage reads list up to limit records: all of it (whole) when it holds no more.
func firstPage(list iter.Seq2[record, error], limit int) (head []record, whole bool, err error) {
	for rec, err := range list {
		if err != nil {
			return nil, false, err
		}
		head = append(head, rec)
		if len(head) == limit {
			return head, false, nil
		}
	}
	return head, true, nil
}

// recordsOf lists recs.
func recordsOf(recs []record) iter.Seq2[record, error] {
	return func(yield func(record, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// without drops from list the records stamped exactly at mark whose ids are in skip.
func without(list iter.Seq2[record, error], mark time.Time, skip map[int64]bool) iter.Seq2[record, error] {
	if len(skip) == 0 {
		return list
	}
	return func(yield func(record, error) bool) {
		for rec, err := range list {
			if err == nil && skip[rec.id] && rec.modified.Equal(mark) {
				continue
			}
			if !yield(rec, err) {
				return
			}
		}
	}
}

// sliceBounds cuts [oldest, newest] into ranges of about 0.8 pages each (a range a little under
// a page is usually fetched in one call), on whole seconds, and returns where each range after
// the first starts; none when the listing is too small to be worth cutting.
func sliceBounds(oldest, newest time.Time, n, pageSize, fetchers int) []time.Time {
	pages := (n + pageSize - 1) / pageSize
	if pages < 2 || fetchers < 2 || oldest.IsZero() || !newest.After(oldest) {
		return nil
	}
	slices := pages + pages/4 + 1
	lo, hi := oldest.Truncate(time.Second), newest.Truncate(time.Second)
	step := hi.Sub(lo) / time.Duration(slices)
	step = step.Truncate(time.Second)
	if step < time.Second {
		step = time.Second
	}
	var bounds []time.Time
	for b := lo.Add(step); !b.After(hi); b = b.Add(step) {
		bounds = append(bounds, b)
	}
	return bounds
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
func (s *Sweeper) applyPage(ctx context.Context, account, objectType string, page []record, asked *time.Time) error {
	err := s.applySetBased(ctx, account, objectType, page, asked)
	for attempt := 1; attempt < 5 && isContention(err); attempt++ {
		err = s.applySetBased(ctx, account, objectType, page, asked)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	s.Log.Warn("page refused; applying record by record", "type", objectType, "err", err)
	w := &Worker{DB: s.DB, Log: s.Log}
	return pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlAskedAt, asked); err != nil {
			return fmt.Errorf("note when the page was asked for: %w", err)
		}
		return w.applyEach(ctx, tx, account, objectType, page)
	})
}

// applySetBased applies a page, made storable, with one call. Records that had to be rewritten
// are applied as rewritten and parked with their original in the same transaction; one that is
// not JSON at all is only parked.
func (s *Sweeper) applySetBased(ctx context.Context, account, objectType string, page []record, asked *time.Time) error {
	stage := make([]json.RawMessage, 0, len(page))
	settled := make([]int64, 0, len(page))
	var letters []deadLetter
	for _, r := range page {
		p := prepare(account, objectType, r)
		switch {
		case p.stored == nil:
			letters = append(letters, p.letter)
		case p.letter.alt.any():
			stage = append(stage, p.stored)
			letters = append(letters, p.letter)
		default:
			stage = append(stage, p.stored)
			settled = append(settled, r.id)
		}
	}
	return pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlAskedAt, asked); err != nil {
			return fmt.Errorf("note when the page was asked for: %w", err)
		}
		if len(stage) > 0 {
			if _, err := tx.Exec(ctx, sqlApplyPage, account, objectType, stage); err != nil {
				return err
			}
		}
		if err := parkAll(ctx, tx, letters); err != nil {
			return err
		}
		return settle(ctx, tx, account, objectType, settled)
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
	ks, err := s.kindsToSync(ctx, account, objectTypes)
	if err != nil {
		return 0, err
	}
	total := 0
	var errs []error
	for _, k := range ks {
		n, err := s.sweepDeletesOne(ctx, api, account, k)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("delete sweep of %ss of account %s: %w", k.objectType, account, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return total, errors.Join(errs...)
}

func (s *Sweeper) sweepDeletesOne(ctx context.Context, api Keap, account string, k kind) (int, error) {
	t := k.objectType
	rows, err := s.DB.Query(ctx, sqlLocalKeapIDs, account, t)
	if err != nil {
		return 0, fmt.Errorf("read synced %s ids: %w", t, err)
	}
	local, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("read synced %s ids: %w", t, err)
	}
	inKeap := make(map[int64]bool, len(local))
	for rec, err := range k.list(ctx, api, time.Time{}) {
		if err != nil {
			return 0, fmt.Errorf("list %ss: %w", t, err)
		}
		inKeap[rec.id] = true
	}
	total := 0
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
	return total, nil
}
