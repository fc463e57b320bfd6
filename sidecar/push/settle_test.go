package push_test

import (
	"context"
	"testing"
	"time"
)

// Hot rows coalesce: a record changed again while it rests waits until it has been quiet for
// as long as its changes spanned, and at least the settle time once per change queued; one pushed lately waits until
// the longest settle has passed since; a record's first change waits only the settle time, and
// no wait passes the longest settle after the first change. (Times are set in the queue, not
// waited for.)
func TestHotRowsRestLongerColdRowsDoNot(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	cfg := w.config(nil)
	cfg.Settle, cfg.MaxSettle = time.Minute, 10*time.Minute
	p := w.pusher(cfg)
	w.start(p.Consume)
	w.enqueued()
	id, _ := w.synced(0)
	claimable := func(when string) int {
		t.Helper()
		w.exec(`update keap.contacts set job_title = $2 where id = $1`, id, when)
		w.enqueued()
		w.exec(`update keapsync.push_queue set `+when+` where local_id = $1`, id)
		n, err := p.PushOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Cold: first change two minutes ago, none since.
	if n := claimable(`first_enqueued_at = now() - interval '2 minutes', last_enqueued_at = now() - interval '2 minutes'`); n != 1 {
		t.Fatalf("a record quiet past the settle time was not pushed (%d)", n)
	}
	// Hot: changed again just now, within its settle window.
	w.exec(`update keapsync.sync_state set last_pushed_at = now() - interval '1 hour' where local_id = $1`, id)
	if n := claimable(`first_enqueued_at = now() - interval '2 minutes', last_enqueued_at = now()`); n != 0 {
		t.Fatal("a record changed again within its settle window was pushed at once")
	}
	// Bounded: resting since its first change for the longest settle, it goes.
	if n := claimable(`first_enqueued_at = now() - interval '11 minutes', last_enqueued_at = now()`); n != 1 {
		t.Fatalf("a hot record resting past the longest settle was not pushed (%d)", n)
	}
	// Pushed lately (just now, above) and quiet since its change: it waits for the longest settle.
	if n := claimable(`first_enqueued_at = now() - interval '2 minutes', last_enqueued_at = now() - interval '2 minutes'`); n != 0 {
		t.Fatal("a record pushed lately was pushed again after only the settle time")
	}
	// Adaptive: changed for six minutes and quiet for two (past the settle time), it rests on
	// until it has been quiet as long as it was busy; changed for two and quiet for three, it goes.
	w.exec(`update keapsync.sync_state set last_pushed_at = now() - interval '1 hour' where local_id = $1`, id)
	if n := claimable(`first_enqueued_at = now() - interval '8 minutes', last_enqueued_at = now() - interval '2 minutes'`); n != 0 {
		t.Fatal("a record busy for longer than it has been quiet was pushed")
	}
	if n := claimable(`first_enqueued_at = now() - interval '5 minutes', last_enqueued_at = now() - interval '3 minutes', changes = 2`); n != 1 {
		t.Fatalf("a record quiet for as long as it was busy was not pushed (%d)", n)
	}
	// Counted: changed three times within a minute and a half, it rests three settle times after
	// its last change, though it has been quiet longer than it was busy and than one settle time.
	w.exec(`update keapsync.sync_state set last_pushed_at = now() - interval '1 hour' where local_id = $1`, id)
	if n := claimable(`first_enqueued_at = now() - interval '4 minutes', last_enqueued_at = now() - interval '150 seconds', changes = 3`); n != 0 {
		t.Fatal("a record changed three times was pushed before three settle times of quiet")
	}
	if n := claimable(`first_enqueued_at = now() - interval '5 minutes', last_enqueued_at = now() - interval '210 seconds', changes = 3`); n != 1 {
		t.Fatalf("a record changed three times and quiet for three settle times was not pushed (%d)", n)
	}
}

// A change this process queued wakes an idle worker once it has rested for the settle time: a
// single edit does not also wait out the poll interval (an hour here, so only the wake-up can
// push it).
func TestQueuedChangeWakesAWorker(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2)
	cfg := w.config(nil)
	cfg.PollInterval = time.Hour
	w.start(w.pusher(cfg).Run)
	w.enqueued()
	id, kid := w.synced(0)
	w.exec(`update keap.contacts set job_title = 'Woken' where id = $1`, id)
	w.quiet()
	if c := w.contact(kid); c.JobTitle != "Woken" {
		t.Errorf("in Keap: %q", c.JobTitle)
	}
}
