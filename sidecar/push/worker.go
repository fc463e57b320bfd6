package push

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// claimBatch is how many due records one worker claims at a time.
const claimBatch = 4

// The lock key of a record. Two workers (in one process or two) never push one record at once:
// a push reads the record, calls Keap and records Keap's answer, and interleaving two of those
// could leave Keap holding an older value than the one recorded as agreed.
const lockKey = `hashtextextended('keapsync.push/' || %s || '/' || %s || '/' || %s, 0)`

// dueBy is the condition that queue row q may be pushed at time at (an SQL expression; $3 the
// settle time, $4 the longest settle), if it does not change again. Hot rows coalesce,
// adaptively: a record changed again while it rests waits until it has been quiet for as long as
// it has been busy (its changes so far span last - first), and at least the settle time once per
// change queued (so one pause early in a burst does not push it); and one pushed less than the
// longest settle ago waits for that to pass. Either wait ends the longest settle after its first
// change, so none waits longer; a single change (busy for no time) goes after the settle time.
// It waits, kept, while the account cannot sync (account_state says why).
func dueBy(at string) string {
	return strings.ReplaceAll(`q.next_attempt_at <= @at and q.first_enqueued_at <= @at - $3::interval
     and (q.first_enqueued_at <= @at - $4::interval
          or (q.last_enqueued_at <= @at - greatest($3::interval * q.changes, q.last_enqueued_at - q.first_enqueued_at)
              and not exists (select 1 from keapsync.sync_state s
                               where s.account_id = q.account_id and s.object_type = q.object_type
                                 and s.local_id = q.local_id and s.last_pushed_at > @at - $4::interval)))
     and keapsync.account_can_sync(q.account_id)`, "@at", at)
}

var (
	// Claim due rows of active accounts. The row locks (SKIP LOCKED) last only for this
	// statement's transaction; the session advisory lock lasts until the push is recorded, and
	// the lease keeps other workers from re-reading rows that are in flight.
	sqlClaim = `
with c as materialized (
  select q.account_id, q.object_type, q.local_id from keapsync.push_queue q
   where ` + dueBy("now()") + `
   order by q.next_attempt_at
   limit $1
   for update of q skip locked
), l as materialized (
  select c.*, pg_try_advisory_lock(` + fmt.Sprintf(lockKey, "c.account_id", "c.object_type", "c.local_id") + `) as got from c
)
update keapsync.push_queue q set next_attempt_at = now() + $2::interval
  from l
 where l.got and q.account_id = l.account_id and q.object_type = l.object_type and q.local_id = l.local_id
returning q.account_id::text, q.object_type, q.local_id, q.next_attempt_at, q.attempts, q.create_sent_at, q.sent`
	sqlUnlock = `select pg_advisory_unlock(` + fmt.Sprintf(lockKey, "$1::text", "$2::text", "$3::bigint") + `)`
)

const (
	sqlPushRequest = `select keapsync.push_request($1::uuid, $2, $3)`
	// A person asked to retry a parked push (keapsync.retry_dead_letter): queue the record again.
	sqlRequeue = `
with r as (
  update keapsync.dead_letters set status = 'done'
   where source = 'push' and status = 'retry' and local_id is not null
  returning account_id, object_type, local_id)
select keapsync.enqueue_push(r.account_id, r.object_type, r.local_id, null) from r`
	sqlKeapObject = `select keap_object from keap.contacts where id = $1`
)

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
		case <-p.wake:
		case <-time.After(p.cfg.PollInterval):
		}
	}
}

// PushOnce claims up to a few due records and pushes them; it returns how many it started (a
// shutdown leaves the rest of the claimed ones queued).
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
		return j, r.Scan(&j.account, &j.objectType, &j.localID, &j.leased, &j.attempts, &j.createSentAt, &j.sent)
	})
	if err != nil {
		discard(conn)
		return 0, fmt.Errorf("push: claim: %w", err)
	}
	// One listing reads Keap's versions for several due contact updates (preread.go).
	p.preread(ctx, conn, jobs)
	var fatal error
	started := 0
	for _, j := range jobs {
		if ctx.Err() != nil || fatal != nil {
			// Shutting down (or every record would meet the same error): what is not started
			// stays queued until the lease expires.
			break
		}
		fatal = p.run(ctx, conn, j)
		started++
	}
	// Every claimed record is unlocked, started or not: the connection goes back to the pool,
	// and a lock left on it would keep the record from every other session for its lifetime.
	for _, j := range jobs {
		if _, err := conn.Exec(context.WithoutCancel(ctx), sqlUnlock, j.account, j.objectType, j.localID); err != nil {
			discard(conn)
			break
		}
	}
	return started, fatal
}

// discard closes a pooled connection so the pool drops it (and the server frees its locks).
func discard(conn *pgxpool.Conn) {
	_ = conn.Conn().Close(context.Background())
}

// run pushes one record and records the outcome; failures are recorded, not returned, except
// a 404 for Keap's route (keap.ErrRouteNotFound): recorded as a retry, and returned, since every
// other record would meet it too.
func (p *Pusher) run(ctx context.Context, conn *pgxpool.Conn, claimed job) error {
	j := &pushJob{job: claimed, p: p, conn: conn}
	log := p.log.With("account", j.account, "record", j.String())
	outcome, err := j.push(ctx)
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
		if perr := j.park(ctx, refused); perr != nil {
			log.Error("park", "err", perr)
			return nil
		}
	} else {
		outcome = OutcomeRetry
		delay := p.cfg.backoff(j.attempts + 1)
		log.Info("push failed; will retry", "err", err, "in", delay)
		if rerr := j.retry(ctx, delay, err); rerr != nil {
			log.Error("record retry", "err", rerr)
		}
	}
	p.metrics.pushes.WithLabelValues(outcome).Inc()
	if errors.Is(err, keap.ErrRouteNotFound) {
		return err
	}
	return nil
}
