package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// claimBatch is how many due records one worker claims at a time.
const claimBatch = 4

// The lock key of a record. Two workers (in one process or two) never push one record at once:
// a push reads the record, calls Keap and records Keap's answer, and interleaving two of those
// could leave Keap holding an older value than the one recorded as agreed.
const lockKey = `hashtextextended('keapsync.push/' || %s || '/' || %s || '/' || %s, 0)`

var (
	// Claim due rows of active accounts. The row locks (SKIP LOCKED) last only for this
	// statement's transaction; the session advisory lock lasts until the push is recorded, and
	// the lease keeps other workers from re-reading rows that are in flight.
	sqlClaim = `
with c as materialized (
  select q.account_id, q.object_type, q.local_id from keapsync.push_queue q
    join keapsync.accounts a on a.id = q.account_id
   where q.next_attempt_at <= now() and q.first_enqueued_at <= now() - $3::interval
     -- Hot rows coalesce: a record changed again while it rests waits until it has been quiet
     -- for the settle time, and one pushed less than the longest settle ago waits for that to
     -- pass; either wait ends the longest settle after its first change, so none waits longer.
     and (q.first_enqueued_at <= now() - $4::interval
          or (q.last_enqueued_at <= now() - $3::interval
              and not exists (select 1 from keapsync.sync_state s
                               where s.account_id = q.account_id and s.object_type = q.object_type
                                 and s.local_id = q.local_id and s.last_pushed_at > now() - $4::interval)))
     and keapsync.account_can_sync(a.id)  -- waits, kept, while the account cannot sync (account_state says why)
   order by q.next_attempt_at
   limit $1
   for update of q skip locked
), l as materialized (
  select c.*, pg_try_advisory_lock(` + fmt.Sprintf(lockKey, "c.account_id", "c.object_type", "c.local_id") + `) as got from c
)
update keapsync.push_queue q set next_attempt_at = now() + $2::interval
  from l
 where l.got and q.account_id = l.account_id and q.object_type = l.object_type and q.local_id = l.local_id
returning q.account_id::text, q.object_type, q.local_id, q.next_attempt_at, q.attempts, coalesce(q.last_error, ''), q.sent`
	sqlUnlock = `select pg_advisory_unlock(` + fmt.Sprintf(lockKey, "$1::text", "$2::text", "$3::bigint") + `)`
)

const (
	sqlPushRequest = `select keapsync.push_request($1::uuid, $2, $3)`
	sqlMarkPushed  = `select keapsync.mark_pushed($1::uuid, $2, $3, $4::jsonb, $5::jsonb)`
	// Done only if no change arrived while Keap was called; otherwise the row stays, due. Any
	// enqueue makes the row due at once, so a lease time that is still ours means none came
	// (the LSN would miss enqueues without one, e.g. after a tag got its Keap id).
	sqlDone = `
delete from keapsync.push_queue where account_id = $1::uuid and object_type = $2 and local_id = $3
   and next_attempt_at = $4`
	// A change that came while Keap was called rests from now, like a first change: a record
	// edited continuously is pushed about once per settle, not once per call.
	sqlRearm = `update keapsync.push_queue set attempts = 0, last_error = null, sent = null, first_enqueued_at = now()
 where account_id = $1::uuid and object_type = $2 and local_id = $3`
	sqlRetry = `update keapsync.push_queue set attempts = attempts + 1, next_attempt_at = now() + $4::interval, last_error = $5
 where account_id = $1::uuid and object_type = $2 and local_id = $3`
	sqlNoteCreate = `update keapsync.push_queue set last_error = $4, sent = $5::jsonb
 where account_id = $1::uuid and object_type = $2 and local_id = $3`
	sqlSent = `update keapsync.push_queue set sent = $4::jsonb
 where account_id = $1::uuid and object_type = $2 and local_id = $3`
	// One parked letter per record: a record refused again updates its letter.
	sqlParkAgain = `
update keapsync.dead_letters set attempts = attempts + 1, last_failed_at = now(), error = $6, http_status = $7,
       payload = $5, keap_id = $4
 where account_id = $1::uuid and source = 'push' and object_type = $2 and local_id = $3 and status = 'parked'`
	sqlPark = `
insert into keapsync.dead_letters (account_id, source, object_type, keap_id, local_id, payload, error, http_status)
values ($1::uuid, 'push', $2, $4, $3, $5, $6, $7)`
	// A person asked to retry a parked push (keapsync.retry_dead_letter): queue the record again.
	sqlRequeue = `
with r as (
  update keapsync.dead_letters set status = 'done'
   where source = 'push' and status = 'retry' and local_id is not null
  returning account_id, object_type, local_id)
select keapsync.enqueue_push(r.account_id, r.object_type, r.local_id, null) from r`
	sqlKeapObject = `select keap_object from keap.contacts where id = $1`
)

// job is a claimed queue row.
type job struct {
	account, objectType string
	localID             int64
	leased              time.Time // next_attempt_at as claimed; an enqueue moves it
	attempts            int
	lastError           string
	sent                json.RawMessage // what a push whose answer is not recorded sent (push_queue.sent)
}

func (j job) String() string { return fmt.Sprintf("%s %d", j.objectType, j.localID) }

// Work runs the workers until ctx ends, or until one meets an error no record can be blamed for
// (keap.ErrRouteNotFound): then all stop and Work returns it.
func (p *Pusher) Work(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, p.cfg.Workers)
	for i := 0; i < p.cfg.Workers; i++ {
		go func() { errc <- p.workLoop(ctx, i == 0) }()
	}
	var first error
	for i := 0; i < p.cfg.Workers; i++ {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

func (p *Pusher) workLoop(ctx context.Context, requeue bool) error {
	for {
		if requeue {
			if _, err := p.cfg.DB.Exec(ctx, sqlRequeue); err != nil && ctx.Err() == nil {
				p.log.Warn("requeue retried dead letters", "err", err)
			}
		}
		n, err := p.PushOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, keap.ErrRouteNotFound) {
			p.log.Error("push stopped: Keap answered 404 for the route itself; fix KEAP_API_URL", "err", err)
			return fmt.Errorf("push: %w", err)
		}
		if err != nil {
			p.log.Warn("push round failed", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.cfg.PollInterval):
		}
	}
}

// PushOnce claims up to a few due records and pushes them; it returns how many it claimed.
func (p *Pusher) PushOnce(ctx context.Context) (int, error) {
	conn, err := p.cfg.DB.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("push: acquire connection: %w", err)
	}
	defer conn.Release()
	rows, err := conn.Query(ctx, sqlClaim, claimBatch, p.cfg.Lease.String(), p.cfg.Settle.String(), p.cfg.MaxSettle.String())
	if err != nil {
		discard(conn) // advisory locks may have been taken: never hand such a session back
		return 0, fmt.Errorf("push: claim: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (job, error) {
		var j job
		return j, r.Scan(&j.account, &j.objectType, &j.localID, &j.leased, &j.attempts, &j.lastError, &j.sent)
	})
	if err != nil {
		discard(conn)
		return 0, fmt.Errorf("push: claim: %w", err)
	}
	var fatal error
	for i, j := range jobs {
		if ctx.Err() != nil || fatal != nil {
			// Shutting down: what is not started stays queued (the lease expires).
			jobs = jobs[:i]
			break
		}
		fatal = p.run(ctx, conn, j)
	}
	for _, j := range jobs {
		if _, err := conn.Exec(context.WithoutCancel(ctx), sqlUnlock, j.account, j.objectType, j.localID); err != nil {
			discard(conn)
			break
		}
	}
	return len(jobs), fatal
}

// discard closes a pooled connection so the pool drops it (and the server frees its locks).
func discard(conn *pgxpool.Conn) {
	_ = conn.Conn().Close(context.Background())
}

// run pushes one record and records the outcome; failures are recorded, not returned, except
// a 404 for Keap's route (keap.ErrRouteNotFound): recorded as a retry, and returned, since every
// other record would meet it too.
func (p *Pusher) run(ctx context.Context, conn *pgxpool.Conn, j job) error {
	log := p.log.With("account", j.account, "record", j.String())
	outcome, err := p.push(ctx, conn, &j)
	if err == nil {
		p.metrics.pushes.WithLabelValues(outcome).Inc()
		log.Debug("pushed", "outcome", outcome)
		return nil
	}
	if ctx.Err() != nil {
		return nil // interrupted: the lease expires and the record is pushed again
	}
	var refused *refusal
	if errors.As(err, &refused) {
		outcome = OutcomeDeadLetter
		if refused.status == 0 {
			outcome = OutcomeUnsupported
		}
		log.Warn("parked in dead letters", "err", err)
		if perr := p.park(ctx, conn, j, refused); perr != nil {
			log.Error("park", "err", perr)
			return nil
		}
	} else {
		outcome = OutcomeRetry
		delay := p.cfg.backoff(j.attempts + 1)
		msg := err.Error()
		if at, ok := createSentAt(j.lastError); ok {
			msg = createNote(at) + "; " + msg // keep the mark: Keap may have created it anyway
		}
		log.Info("push failed; will retry", "err", err, "in", delay)
		if _, rerr := conn.Exec(ctx, sqlRetry, j.account, j.objectType, j.localID, delay.String(), msg); rerr != nil {
			log.Error("record retry", "err", rerr)
		}
	}
	p.metrics.pushes.WithLabelValues(outcome).Inc()
	if errors.Is(err, keap.ErrRouteNotFound) {
		return err
	}
	return nil
}

// refusal is a definitive no for one record: Keap's 4xx, or something Keap's API cannot do
// (status 0). The record is parked; everything else flows on.
type refusal struct {
	status  int
	keapID  *int64
	payload json.RawMessage
	err     error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// refused turns Keap's 4xx for a record into a refusal. 401/403 are about the credentials, not
// the record, and 408/429 are transient: those are retried.
func refused(err error, req *request) error {
	var api *keap.APIError
	if errors.As(err, &api) && api.Status >= 400 && api.Status < 500 && !api.RouteNotFound() {
		switch api.Status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
			return err
		}
		return &refusal{status: api.Status, keapID: req.KeapID, payload: req.payload(), err: err}
	}
	return err
}

func (p *Pusher) park(ctx context.Context, conn *pgxpool.Conn, j job, r *refusal) error {
	var status *int
	if r.status != 0 {
		status = &r.status
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sqlParkAgain, j.account, j.objectType, j.localID, r.keapID, r.payload, r.err.Error(), status)
		if err != nil {
			return fmt.Errorf("update dead letter: %w", err)
		}
		if tag.RowsAffected() == 0 {
			if _, err := tx.Exec(ctx, sqlPark, j.account, j.objectType, j.localID, r.keapID, r.payload, r.err.Error(), status); err != nil {
				return fmt.Errorf("insert dead letter: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, sqlDone, j.account, j.objectType, j.localID, j.leased); err != nil {
			return fmt.Errorf("dequeue: %w", err)
		}
		return nil
	})
}

// lockRow locks a record's row before mark_pushed touches its sync state. A local edit locks
// the row, then its trigger the sync state; mark_pushed would take them the other way round
// (sync state, then the row it writes back to), and the two would deadlock.
var lockRow = func() map[string]string {
	out := map[string]string{}
	for _, t := range objecttype.All {
		// The table names are the registry's constants, not input.
		out[t.Name] = fmt.Sprintf(`select 1 from %s where id = $1 for update`, pgx.Identifier{"keap", t.Table}.Sanitize())
	}
	return out
}()

// record hands Keap's answer to mark_pushed.
func record(ctx context.Context, tx pgx.Tx, j job, pushed, answer json.RawMessage) error {
	if sql, ok := lockRow[j.objectType]; ok {
		if _, err := tx.Exec(ctx, sql, j.localID); err != nil {
			return fmt.Errorf("push: lock row: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, sqlMarkPushed, j.account, j.objectType, j.localID, pushed, answer); err != nil {
		return fmt.Errorf("push: mark pushed: %w", err)
	}
	return nil
}

// done records Keap's answer (when there is one) and takes the record off the queue, in one
// transaction: a crash before it commits leaves the record queued, and the push is repeated.
// Statements in then run in the same transaction with the record's local id as $1.
func (p *Pusher) done(ctx context.Context, conn *pgxpool.Conn, j job, pushed, answer json.RawMessage, mark bool, then ...string) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if mark {
			if err := record(ctx, tx, j, pushed, answer); err != nil {
				return err
			}
		}
		for _, sql := range then {
			if _, err := tx.Exec(ctx, sql, j.localID); err != nil {
				return fmt.Errorf("push: after push: %w", err)
			}
		}
		tag, err := tx.Exec(ctx, sqlDone, j.account, j.objectType, j.localID, j.leased)
		if err != nil {
			return fmt.Errorf("push: dequeue: %w", err)
		}
		if tag.RowsAffected() == 0 {
			_, err = tx.Exec(ctx, sqlRearm, j.account, j.objectType, j.localID)
		}
		return err
	})
}

// The create mark: a create was sent at this time and may have succeeded though we never heard.
const createPrefix = "create sent at "

func createNote(t time.Time) string { return createPrefix + t.UTC().Format(time.RFC3339Nano) }

func createSentAt(lastError string) (time.Time, bool) {
	if !strings.HasPrefix(lastError, createPrefix) {
		return time.Time{}, false
	}
	s, _, _ := strings.Cut(strings.TrimPrefix(lastError, createPrefix), ";")
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}
