package push_test

import (
	"context"
	"testing"
)

// Work for an account that cannot sync (here: an OAuth account with no token) is not sent and
// not retried: it waits in the queue, untouched, while keapsync.account_state says why; once the
// account can sync, it goes. (It used to be retried forever without a dead letter.)
func TestAccountThatCannotSyncWaits(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	p := w.pusher(w.config(nil))
	w.start(p.Consume)
	w.enqueued() // streaming
	w.exec(`update keapsync.accounts set credential = 'oauth' where id = $1`, w.account)
	id, _ := w.synced(0)
	w.exec(`update keap.contacts set job_title = 'Waits' where id = $1`, id)
	w.enqueued()
	w.exec(`update keapsync.push_queue set first_enqueued_at = now() - interval '1 minute'`) // past the settle time
	before := len(w.writes())
	if n, err := p.PushOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("pushed %d records of an account with no token (err %v)", n, err)
	}
	if got := w.int(`select count(*) from keapsync.push_queue where attempts = 0 and last_error is null`); got != 1 {
		t.Errorf("%d untouched queue rows, want 1", got)
	}
	if len(w.writes()) != before {
		t.Errorf("Keap was called: %v", w.writes()[before:])
	}
	var state, reason string
	if err := w.db.QueryRow(context.Background(), `select state, reason from keapsync.account_state where account_id = $1`,
		w.account).Scan(&state, &reason); err != nil || state != "not_connected" || reason != "no Keap token stored" {
		t.Errorf("account state %q %q (%v)", state, reason, err)
	}
	w.exec(`update keapsync.accounts set credential = 'api_key' where id = $1`, w.account)
	if n, err := p.PushOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("once the account can sync: pushed %d (err %v)", n, err)
	}
	if w.int(`select count(*) from keapsync.push_queue`) != 0 {
		t.Error("the record is still queued")
	}
}
