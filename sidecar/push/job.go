package push

// The queue row: a claimed keapsync.push_queue row and everything recorded of it, from the
// marks written before Keap is called to the outcome (done, retry, parked).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
)

const (
	sqlMarkPushed = `select keapsync.mark_pushed($1::uuid, $2, $3, $4::jsonb, $5::jsonb)`
	// Done only if no change arrived while Keap was called; otherwise the row stays, due. Any
	// enqueue makes the row due at once, so a lease time that is still ours means none came
	// (the LSN would miss enqueues without one, e.g. after a tag got its Keap id).
	sqlDone = `
delete from keapsync.push_queue where account_id = $1::uuid and object_type = $2 and local_id = $3
   and next_attempt_at = $4`
	// A change that came while Keap was called rests from now, like a first change: a record
	// edited continuously is pushed about once per settle, not once per call.
	sqlRearm = `update keapsync.push_queue set attempts = 0, last_error = null, sent = null, create_sent_at = null,
       first_enqueued_at = now(), changes = 1
 where account_id = $1::uuid and object_type = $2 and local_id = $3`
	sqlRetry = `update keapsync.push_queue set attempts = attempts + 1, next_attempt_at = now() + $4::interval, last_error = $5
 where account_id = $1::uuid and object_type = $2 and local_id = $3`
	sqlNoteCreate = `update keapsync.push_queue set create_sent_at = $4, sent = $5::jsonb
 where account_id = $1::uuid and object_type = $2 and local_id = $3`
	// What is sent, and the database's time before it goes (keapsync.set_asked_at).
	sqlSent = `
with noted as (
  update keapsync.push_queue set sent = $4::jsonb
   where account_id = $1::uuid and object_type = $2 and local_id = $3)
select clock_timestamp()`
	// Keap's versions this transaction applies were asked for at $1 (keapsync.set_asked_at).
	sqlAskedAt = `select keapsync.set_asked_at($1)`
	// One parked letter per record: a record refused again updates its letter.
	sqlParkAgain = `
update keapsync.dead_letters set attempts = attempts + 1, last_failed_at = now(), error = $6, http_status = $7,
       payload = $5, keap_id = $4
 where account_id = $1::uuid and source = 'push' and object_type = $2 and local_id = $3 and status = 'parked'`
	sqlPark = `
insert into keapsync.dead_letters (account_id, source, object_type, keap_id, local_id, payload, error, http_status)
values ($1::uuid, 'push', $2, $4, $3, $5, $6, $7)`
)

// job is a claimed queue row.
type job struct {
	account, objectType string
	localID             int64
	leased              time.Time // next_attempt_at as claimed; an enqueue moves it
	attempts            int
	// createSentAt (push_queue.create_sent_at) is when a create was sent whose answer is not
	// recorded: it may have succeeded though we never heard, so a retry looks for what it made.
	createSentAt *time.Time
	sent         json.RawMessage // what a push whose answer is not recorded sent (push_queue.sent)
	// askedAt is the database's time just before the calls whose answer is recorded went to
	// Keap (noteSent): it orders that answer against a version of the same stamp applied
	// meanwhile. Nil when not known: the answer is then merged as Keap's newest.
	askedAt *time.Time
}

// createMark says whether a create was sent for this record before, and when.
func (j *job) createMark() (time.Time, bool) {
	if j.createSentAt == nil {
		return time.Time{}, false
	}
	return *j.createSentAt, true
}

func (j job) String() string { return fmt.Sprintf("%s %d", j.objectType, j.localID) }

// noteSent records, before the calls that change a contact in Keap, what they send: should
// Keap's answers never reach us, the merge knows those values as ours when Keap's next version
// shows them (keapsync.apply_keap_record), instead of taking them for an edit made in Keap. It
// also notes when they were asked for (askedAt).
func (j *pushJob) noteSent(ctx context.Context, pushed json.RawMessage) error {
	if len(pushed) == 0 || string(pushed) == "{}" || string(pushed) == "null" {
		return nil
	}
	var at time.Time
	if err := j.conn.QueryRow(ctx, sqlSent, j.account, j.objectType, j.localID, pushed).Scan(&at); err != nil {
		return fmt.Errorf("push: note what is sent: %w", err)
	}
	j.askedAt = &at
	return nil
}

// noteCreate marks a create in the queue row before it is sent: when it was sent, and what.
func (j *pushJob) noteCreate(ctx context.Context, sent json.RawMessage) error {
	now := time.Now()
	j.createSentAt, j.sent = &now, sent
	if _, err := j.conn.Exec(ctx, sqlNoteCreate, j.account, j.objectType, j.localID, now, sent); err != nil {
		return fmt.Errorf("push: mark create: %w", err)
	}
	return nil
}

// markCreated records a contact's create on its own, so its Keap id is written back before the
// tag calls that follow can fail.
func (j *pushJob) markCreated(ctx context.Context, pushed, raw json.RawMessage) error {
	return pgx.BeginFunc(ctx, j.conn, func(tx pgx.Tx) error { return record(ctx, tx, j.job, pushed, raw) })
}

// retry records a failed push to be tried again after delay. A create mark stays: Keap may
// have made the record anyway.
func (j *pushJob) retry(ctx context.Context, delay time.Duration, cause error) error {
	_, err := j.conn.Exec(ctx, sqlRetry, j.account, j.objectType, j.localID, delay.String(), cause.Error())
	return err
}

// park records a refused push in the dead letters and takes it off the queue.
func (j *pushJob) park(ctx context.Context, r *refusal) error {
	var status *int
	if r.status != 0 {
		status = &r.status
	}
	return pgx.BeginFunc(ctx, j.conn, func(tx pgx.Tx) error {
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
	if _, err := tx.Exec(ctx, sqlAskedAt, j.askedAt); err != nil {
		return fmt.Errorf("push: note when Keap's answer was asked for: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlMarkPushed, j.account, j.objectType, j.localID, pushed, answer); err != nil {
		return fmt.Errorf("push: mark pushed: %w", err)
	}
	return nil
}

// done records Keap's answer (when there is one) and takes the record off the queue, in one
// transaction: a crash before it commits leaves the record queued, and the push is repeated.
// Statements in then run in the same transaction with the record's local id as $1.
func (j *pushJob) done(ctx context.Context, pushed, answer json.RawMessage, mark bool, then ...string) error {
	return pgx.BeginFunc(ctx, j.conn, func(tx pgx.Tx) error {
		if mark {
			if err := record(ctx, tx, j.job, pushed, answer); err != nil {
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
