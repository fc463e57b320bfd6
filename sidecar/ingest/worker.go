package ingest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/lifecycle"
	"golang.org/x/sync/errgroup"
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
	// Loops is how many drain the inbox at once once started (default 1).
	Loops int
	// PollEvery is how often an idle loop looks for due rows (default 1 s).
	PollEvery time.Duration
	Log       *slog.Logger

	loop lifecycle.Loop
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
	if w.Loops == 0 {
		w.Loops = 1
	}
	if w.PollEvery == 0 {
		w.PollEvery = time.Second
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
select i.id, i.event_key, i.object_ids, i.received_at, i.attempts, i.account_id::text, i.object_type,
       coalesce(i.payload -> 'tag_ids', '[]'), coalesce(i.payload -> 'either_ids', '[]')
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
	// A record refused for naming one not here yet is looked at again later, alone, with the
	// inbox's backoff; attempts carries over, so MaxAttempts bounds the looks.
	sqlRecheck = `
insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, attempts, next_attempt_at)
values ($1, $2 || '.recheck', $2, array[$3::bigint], '{}', $4::int,
        now() + least(interval '1 second' * power(2, $4::int), interval '30 minutes'))`
	// Every read of a group is asked for after its transaction began: that moment orders what
	// the group applies against versions of the same stamp applied meanwhile (keapsync.set_asked_at).
	sqlAskedAtStart = `select keapsync.set_asked_at(now())`
	sqlApply        = `select keapsync.apply_keap_record($1, $2, $3)`
	sqlApplyDel     = `select keapsync.apply_keap_delete($1, $2, $3)`
)

type inboxRow struct {
	id         int64
	eventKey   string
	ids        []int64
	receivedAt time.Time
	attempts   int
	// Tag applications naming tags, or ids nothing identified (Delivery.TagIDs, .EitherIDs).
	tagIDs, eitherIDs []int64
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
		if err := rows.Scan(&r.id, &r.eventKey, &r.ids, &r.receivedAt, &r.attempts, &account, &objectType, &r.tagIDs, &r.eitherIDs); err != nil {
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
	if _, err := tx.Exec(ctx, sqlAskedAtStart); err != nil {
		return false, fmt.Errorf("note when the group's reads are asked for: %w", err)
	}
	if err := w.process(ctx, tx, account, objectType, group); err != nil {
		// Nothing of this group was applied (the savepoints rolled back with the failure); retry
		// later with backoff, or park the rows once they have failed too often.
		tx.Rollback(ctx)
		if ctx.Err() != nil {
			return true, ctx.Err() // shutting down: the rows stay due, no attempt is counted
		}
		if errors.Is(err, keap.ErrRouteNotFound) {
			// Keap's routes are not where KEAP_API_URL says: every fetch would fail alike and
			// none says anything about the records. The rows stay due, no attempt counted.
			return true, err
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
	if off, err := isOff(ctx, tx, account, objectType); err != nil || off {
		return err // a type turned off: its deliveries are done with, nothing fetched
	}
	api, err := w.API(ctx, account)
	if err != nil {
		return err
	}
	ctx = keap.WithPriority(ctx, keap.Live)
	changed, deleted := map[int64]bool{}, map[int64]bool{}
	named := map[int64]bool{} // ids an event names as the object itself: a 404 means deleted
	oldest := group[0].receivedAt
	for _, r := range group {
		d := Delivery{EventKey: r.eventKey}
		for _, id := range r.ids {
			if d.IsDelete() {
				deleted[id] = true
			} else {
				changed[id] = true
			}
			if d.NamesObject() {
				named[id] = true
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
	if err := w.tagMembers(ctx, tx, api, account, group, changed); err != nil {
		return err
	}
	found := map[int64]bool{}
	var settled []int64 // applied as Keap sent them
	tries := 0
	for _, r := range group {
		tries = max(tries, r.attempts+1)
	}
	applyOne := func(rec record) error {
		clean, ahead, err := w.apply(ctx, tx, account, objectType, rec)
		if clean {
			settled = append(settled, rec.id)
		}
		if ahead && err == nil && tries < w.MaxAttempts {
			// Keap's hooks come in no particular order: a note's may come before its contact's.
			if _, err := tx.Exec(ctx, sqlRecheck, account, objectType, rec.id, tries); err != nil {
				return fmt.Errorf("schedule another look at %s %d: %w", objectType, rec.id, err)
			}
		}
		return err
	}
	if k, err = throughV2(ctx, tx, account, k); err != nil {
		return err
	}
	list, err := w.listCheaper(ctx, tx, account, k, len(changed))
	if err != nil {
		return err
	}
	if list {
		// Keap delivers hooks 30-60 s after a change and retries for up to ~40 minutes; listing
		// what changed since well before the oldest delivery catches every id in few calls.
		since := oldest.Add(-time.Hour)
		listed, err := w.listChanged(ctx, tx, account, api, k, changed, found, since)
		if err != nil {
			return err
		}
		if listed, err = completeListed(ctx, w.Log, api, k, listed); err != nil {
			return err
		}
		var seen agreement
		if listed, seen, err = withCustomFields(ctx, w.Log, api, k, listed, since); err != nil {
			return err
		}
		if err := seen.store(ctx, tx, w.Log, account, objectType); err != nil {
			return err
		}
		for _, rec := range listed {
			if err := applyOne(rec); err != nil {
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
	var got []record // fetched one by one, applied once their custom fields are read together
	for _, id := range ids {
		rec, err := k.get(ctx, api, id)
		switch {
		case errors.Is(err, keap.ErrNotFound) && !named[id]:
			// Not an id of this object type after all: nothing to fetch, nothing to delete.
		case errors.Is(err, keap.ErrNotFound):
			if _, err := tx.Exec(ctx, sqlApplyDel, account, objectType, id); err != nil {
				return fmt.Errorf("apply delete of %s %d: %w", objectType, id, err)
			}
		case permanent(err):
			// One bad record blocks only itself (law 6).
			if err := park(ctx, tx, deadLetter{account: account, objectType: objectType, keapID: id,
				cause: err.Error(), status: statusOf(err)}); err != nil {
				return err
			}
		case errors.Is(err, keap.ErrBadResponse):
			// Keap answered 2xx with nothing usable for this id: parked by its id, with
			// whatever Keap sent, instead of applied as an empty record or failing the group.
			var re *keap.ResponseError
			errors.As(err, &re)
			if err := park(ctx, tx, deadLetter{account: account, objectType: objectType, keapID: id,
				raw: re.Body, cause: err.Error(), status: &re.Status}); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("fetch %s %d: %w", objectType, id, err)
		default:
			got = append(got, rec)
		}
	}
	got, seen, err := withCustomFields(ctx, w.Log, api, k, got, time.Time{})
	if err != nil {
		return err
	}
	if err := seen.store(ctx, tx, w.Log, account, objectType); err != nil {
		return err
	}
	for _, rec := range got {
		if err := applyOne(rec); err != nil {
			return err
		}
	}
	return settle(ctx, tx, account, objectType, settled)
}

// listChanged reads the changed records a listing brings, marking them found: through the
// kind's read of changed records where it has one, else through its listing of what changed
// since. What a listing Keap answers unusably did not bring is left to the GETs per id, or, when
// the read of changed records was the unusable one, to today's listing if that is cheaper.
func (w *Worker) listChanged(ctx context.Context, tx pgx.Tx, account string, api Keap, k kind,
	changed, found map[int64]bool, since time.Time) ([]record, error) {
	if k.changed != nil {
		ids := slices.Sorted(maps.Keys(changed))
		listed, usable, err := w.collect(k, k.changed(ctx, api, ids, since), changed, found)
		if err != nil {
			return nil, fmt.Errorf("read %d changed %ss: %w", len(ids), k.objectType, err)
		}
		if usable {
			return listed, nil
		}
		whole, err := w.wholeCheaper(ctx, tx, account, k, len(changed)-len(listed))
		if err != nil || !whole {
			return listed, err
		}
		more, err := w.listSince(ctx, api, k, changed, found, since)
		return append(listed, more...), err
	}
	return w.listSince(ctx, api, k, changed, found, since)
}

// listSince is listChanged through the kind's listing of what changed since.
func (w *Worker) listSince(ctx context.Context, api Keap, k kind, changed, found map[int64]bool, since time.Time) ([]record, error) {
	listed, _, err := w.collect(k, k.list(ctx, api, since), changed, found)
	if err != nil {
		return nil, fmt.Errorf("list %ss changed since %s: %w", k.objectType, since.Format(time.RFC3339), err)
	}
	return listed, nil
}

// collect gathers the changed records of seq not found yet and marks them found. A listing Keap
// answers unusably (a page with a hostile record in it, a filter refused) ends early, usable
// false: what it did not bring is read another way, so only that record fails.
func (w *Worker) collect(k kind, seq iter.Seq2[record, error], changed, found map[int64]bool) (recs []record, usable bool, err error) {
	for rec, err := range seq {
		if listingUnusable(err) {
			w.Log.Warn("listing unusable; reading the changed records it did not bring otherwise", "type", k.objectType, "err", err)
			return recs, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		if !changed[rec.id] || found[rec.id] {
			continue // changed too, but not asked about (the reconcile sweep covers it), or a repeat
		}
		found[rec.id] = true
		recs = append(recs, rec)
	}
	return recs, true, nil
}

// completeListed adds to the changed records a listing found what the listing leaves out: in
// one go where the kind can (completeAll), else record by record. A record that did not decode
// is left as it is, to be parked.
func completeListed(ctx context.Context, log *slog.Logger, api Keap, k kind, recs []record) ([]record, error) {
	if k.complete == nil {
		return recs, nil
	}
	return onSome(recs, func(r record) bool { return r.bad == nil }, func(good []record) ([]record, error) {
		if k.completeAll == nil {
			return completeEach(ctx, api, k, good)
		}
		done, err := k.completeAll(ctx, api, good)
		if err == nil {
			return done, nil
		}
		if !listingUnusable(err) {
			return nil, fmt.Errorf("fetch what %d listed %ss lack: %w", len(good), k.objectType, err)
		}
		// One item that does not decode, or a filter Keap refuses, spoils the whole listing;
		// asking record by record confines it to the record it belongs to, as before the listing.
		log.Warn("Keap's listing of what the records lack was unusable; asking record by record",
			"type", k.objectType, "records", len(good), "err", err)
		return completeEach(ctx, api, k, good)
	})
}

// onSome passes f the records of recs that pick selects, and returns recs with each of them
// replaced by f's answer in turn (f answers as many records as it was given, in their order).
func onSome(recs []record, pick func(record) bool, f func([]record) ([]record, error)) ([]record, error) {
	some := make([]record, 0, len(recs))
	for _, r := range recs {
		if pick(r) {
			some = append(some, r)
		}
	}
	done, err := f(some)
	if err != nil {
		return nil, err
	}
	out := make([]record, len(recs))
	next := 0
	for i, r := range recs {
		if pick(r) {
			r = done[next]
			next++
		}
		out[i] = r
	}
	return out, nil
}

// completeEach is complete for each record, one call each.
func completeEach(ctx context.Context, api Keap, k kind, recs []record) ([]record, error) {
	out := make([]record, len(recs))
	for i, r := range recs {
		var err error
		if out[i], err = k.complete(ctx, api, r); err != nil {
			return nil, fmt.Errorf("fetch %s %d: %w", k.objectType, r.id, err)
		}
	}
	return out, nil
}

// listingUnusable: Keap answered the listing, but with something it cannot be read from (an
// item that does not decode) or refused how it was asked (a 400: the filter). Unlike a refused
// token, a throttle or a server error, asking record by record may still succeed.
func listingUnusable(err error) bool {
	return errors.Is(err, keap.ErrBadResponse) || errors.Is(err, keap.ErrBadRequest)
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

// apply makes rec storable and applies it in a savepoint. A record the database refuses is
// parked, not fatal; so is one that had to be rewritten to be stored (it is applied as rewritten,
// and its letter keeps the original). clean reports a record applied exactly as Keap sent it;
// ahead, one refused (and parked) for naming a record not here yet (foreign_key_violation: a
// note before its contact), which may arrive soon. An error means a failure that is not the
// record's fault, and the whole group retries.
func (w *Worker) apply(ctx context.Context, tx pgx.Tx, account, objectType string, rec record) (clean, ahead bool, err error) {
	p := prepare(account, objectType, rec)
	if p.stored == nil {
		return false, false, park(ctx, tx, p.letter)
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, false, fmt.Errorf("savepoint: %w", err)
	}
	if _, err := sp.Exec(ctx, sqlApply, account, objectType, p.stored); err != nil {
		_ = sp.Rollback(ctx)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || contention(pgErr) {
			// Not the record's fault (a lost connection, a deadlock or serialization failure
			// with a concurrent edit): the whole group retries.
			return false, false, fmt.Errorf("apply %s %d: %w", objectType, rec.id, err)
		}
		w.Log.Warn("parked a record the database refused", "type", objectType, "id", rec.id, "err", err)
		p.letter.cause = pgErr.Error()
		return false, pgErr.Code == "23503", park(ctx, tx, p.letter)
	}
	if err := sp.Commit(ctx); err != nil {
		return false, false, fmt.Errorf("release savepoint: %w", err)
	}
	if !p.letter.alt.any() {
		return true, false, nil
	}
	w.Log.Warn("applied a record rewritten to be storable; original kept in a dead letter",
		"type", objectType, "id", rec.id, "altered", p.letter.alt.String())
	return false, false, park(ctx, tx, p.letter)
}

// applyEach applies records one by one within tx, each in its own savepoint, and settles the
// letters of those applied as Keap sent them.
func (w *Worker) applyEach(ctx context.Context, tx pgx.Tx, account, objectType string, recs []record) error {
	var settled []int64
	for _, r := range recs {
		// A record naming one not here stays parked: sweeps go in dependency order, so what it
		// names was not in Keap's listing either; the next sweep or a retry of the letter tries again.
		clean, _, err := w.apply(ctx, tx, account, objectType, r)
		if err != nil {
			return err
		}
		if clean {
			settled = append(settled, r.id)
		}
	}
	return settle(ctx, tx, account, objectType, settled)
}

func (w *Worker) retry(ctx context.Context, account, objectType string, group []inboxRow, cause error) error {
	var retry, parked []int64
	for _, r := range group {
		if r.attempts+1 >= w.MaxAttempts {
			parked = append(parked, r.id)
		} else {
			retry = append(retry, r.id)
		}
	}
	return pgx.BeginFunc(ctx, w.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlInboxRetry, retry, storableText(cause.Error())); err != nil {
			return fmt.Errorf("schedule inbox retry: %w", err)
		}
		for _, id := range parked {
			if err := park(ctx, tx, deadLetter{account: account, objectType: objectType, extra: map[string]any{"inbox_id": id},
				cause: "gave up after repeated failures: " + cause.Error(), status: statusOf(cause)}); err != nil {
				return fmt.Errorf("park inbox row %d: %w", id, err)
			}
		}
		if len(parked) > 0 {
			if _, err := tx.Exec(ctx, sqlInboxDone, parked); err != nil {
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

// Start drains the inbox with Loops loops in the background until Stop or ctx ends, each
// polling every PollEvery when idle. A 404 for Keap's route itself ends them all (Err says so).
func (w *Worker) Start(ctx context.Context) error {
	w.defaults()
	return w.loop.Go(ctx, func(ctx context.Context) error {
		g, ctx := errgroup.WithContext(ctx)
		for range w.Loops {
			g.Go(func() error { return w.drain(ctx) })
		}
		return g.Wait()
	})
}

// Stop ends the loops and waits: a group in hand is finished or left due.
func (w *Worker) Stop() { w.loop.Stop() }

// Done is closed when the loops have ended, by Stop or by an error Err returns.
func (w *Worker) Done() <-chan struct{} { return w.loop.Done() }

// Err is why the loops ended (nil after Stop).
func (w *Worker) Err() error { return w.loop.Err() }

// Run is Start, then Stop when ctx ends; it returns Err.
func (w *Worker) Run(ctx context.Context) error { return lifecycle.Run(ctx, w) }

// drain is one loop: it drains the inbox until ctx ends, polling every PollEvery when idle.
func (w *Worker) drain(ctx context.Context) error {
	for {
		did, err := w.RunOnce(ctx)
		if errors.Is(err, keap.ErrRouteNotFound) && ctx.Err() == nil {
			w.Log.Error("inbox worker stopped: Keap answered 404 for the route itself; fix KEAP_API_URL", "err", err)
			return fmt.Errorf("inbox worker: %w", err)
		}
		if err != nil && ctx.Err() == nil {
			w.Log.Error("inbox worker", "err", err)
		}
		if did && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.PollEvery):
		}
	}
}

// sqlRecordsHere counts the records of a type an account has here: about what a listing of the
// whole collection walks.
const sqlRecordsHere = `select count(*) from keapsync.sync_state where account_id = $1::uuid and object_type = $2`

// listCheaper says whether listing fetches the changed ids in fewer calls than one GET each. A
// listing that cannot filter by time (tags, notes) walks the whole collection, a page per
// 1000 records, so it pays only when more ids changed than it has pages; a kind that reads
// changed records on their own (products, opportunities, subscriptions) pays as one filtered
// by time does.
func (w *Worker) listCheaper(ctx context.Context, tx pgx.Tx, account string, k kind, changed int) (bool, error) {
	if changed <= w.ListThreshold {
		return false, nil
	}
	if !k.whole || k.changed != nil {
		return true, nil
	}
	return w.wholeCheaper(ctx, tx, account, k, changed)
}

// wholeCheaper says whether listing the whole collection takes fewer calls than a GET for each
// of changed ids.
func (w *Worker) wholeCheaper(ctx context.Context, tx pgx.Tx, account string, k kind, changed int) (bool, error) {
	if changed <= w.ListThreshold {
		return false, nil
	}
	var here int
	if err := tx.QueryRow(ctx, sqlRecordsHere, account, k.objectType).Scan(&here); err != nil {
		return false, fmt.Errorf("count %ss here: %w", k.objectType, err)
	}
	return changed > here/listLimit+1, nil
}

// sqlLocalTagMembers are the Keap ids of the contacts that hold a tag here.
const sqlLocalTagMembers = `
select c.keap_id from keap.contact_tags ct
  join keap.tags t on t.id = ct.tag_id
  join keap.contacts c on c.id = ct.contact_id
 where ct.account_id = $1 and t.keap_id = $2 and c.keap_id is not null`

// tagMembers adds to changed the contacts a tag application naming a tag may have touched:
// those holding the tag in Keap (applied) and those holding it here (removed). An id the
// delivery did not identify is also taken as a contact id (the caller's get settles it).
func (w *Worker) tagMembers(ctx context.Context, tx pgx.Tx, api Keap, account string, group []inboxRow, changed map[int64]bool) error {
	tags := map[int64]bool{}
	for _, r := range group {
		for _, id := range r.tagIDs {
			tags[id] = true
		}
		for _, id := range r.eitherIDs {
			tags[id] = true
			changed[id] = true
		}
	}
	for tag := range tags {
		for tc, err := range api.TaggedContacts(ctx, keap.ID(tag)) {
			if errors.Is(err, keap.ErrNotFound) {
				break // no such tag (an id that named a contact, or a tag deleted since)
			}
			if err != nil {
				return fmt.Errorf("contacts with tag %d: %w", tag, err)
			}
			changed[int64(tc.Contact.ID)] = true
		}
		rows, err := tx.Query(ctx, sqlLocalTagMembers, account, tag)
		if err != nil {
			return fmt.Errorf("contacts holding tag %d here: %w", tag, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("contacts holding tag %d here: %w", tag, err)
		}
		for _, id := range ids {
			changed[id] = true
		}
	}
	return nil
}
