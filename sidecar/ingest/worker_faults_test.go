package ingest_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// editedAndDelivered backfills the world's contacts, renames one in Keap, and delivers its hook
// (due at once). It returns the contact's id and its new name.
func editedAndDelivered(t *testing.T, w *world) (int64, string) {
	t.Helper()
	if err := w.sweeper.Backfill(context.Background(), w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	id := idOf(t, w.sb.Snapshot().Contacts[0])
	if err := w.sb.EditContact(id, map[string]any{"given_name": "Renamed in Keap"}); err != nil {
		t.Fatal(err)
	}
	w.deliver(t, "contact.edit", id)
	w.worker.Window = 0
	return id, "Renamed in Keap"
}

func (w *world) nameOf(t *testing.T, id int64) string {
	t.Helper()
	var name string
	if err := w.db.QueryRow(context.Background(), `select coalesce(given_name, '') from keap.contacts where account_id = $1 and keap_id = $2`, w.account, id).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// due makes every waiting inbox row due now (the retry backoff elapsed).
func (w *world) due(t *testing.T) {
	t.Helper()
	if _, err := w.db.Exec(context.Background(), `update keapsync.webhook_inbox set next_attempt_at = now() where processed_at is null`); err != nil {
		t.Fatal(err)
	}
}

// The database lost at any step of a group's bookkeeping: the group is all or nothing. Nothing
// of it is applied, the delivery stays in the inbox (with no attempt counted where even that
// could not be written), and once the database answers again the change arrives, unparked.
func TestInboxGroupIsAllOrNothingWhenTheDatabaseFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, failing string
		wantErr       string // "" when RunOnce itself copes (the group is retried later)
		attempts      int    // counted on the delivery
	}{
		{"no transaction", "begin", "drain inbox", 0},
		{"claiming", "with first as", "claim inbox rows", 0},
		{"noting when reads are asked", "set_asked_at(now())", "note when the group's reads are asked for", 0},
		{"applying a record", "apply_keap_record", "", 1},
		{"releasing a record's savepoint", "release savepoint", "", 1},
		{"marking rows done", "processed_at = now()", "mark inbox rows done", 0},
		{"committing", "commit", "commit inbox group", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, 3)
			ctx := context.Background()
			id, name := editedAndDelivered(t, w)
			db := newFlakyDB(w.db)
			w.worker.DB = db
			db.failOn(tc.failing, 1)
			_, err := w.worker.RunOnce(ctx)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("RunOnce with the database lost %s: %v; want error %q", tc.name, err, tc.wantErr)
			}
			if db.failed(tc.failing) != 1 {
				t.Fatalf("the database never failed at %q", tc.failing)
			}
			if got := w.nameOf(t, id); got == name {
				t.Error("part of a failed group was applied")
			}
			if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null and attempts = $1`, tc.attempts); got != 1 {
				t.Errorf("the delivery is not waiting with %d attempts counted (%d such rows)", tc.attempts, got)
			}
			if tc.attempts > 0 {
				if got := w.count(t, `select count(*) from keapsync.webhook_inbox where last_error like '%connection to the database lost%'`); got != 1 {
					t.Error("the waiting delivery does not say why it failed")
				}
			}
			w.due(t)
			w.drain(t)
			if got := w.nameOf(t, id); got != name {
				t.Errorf("after the database came back: %q, want Keap's %q", got, name)
			}
			if got := w.count(t, `select count(*) from keapsync.dead_letters`); got != 0 {
				t.Errorf("%d dead letters for a database outage, which is no record's fault", got)
			}
		})
	}
}

// A delivery whose fetch fails every time is retried MaxAttempts times, then parked as a dead
// letter that names the inbox row and Keap's answer; it is no longer retried.
func TestDeliveryFailingEveryTimeIsParkedAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	_, _ = editedAndDelivered(t, w)
	w.worker.MaxAttempts = 2
	f := w.sb.Faults()
	f.ErrorRate = 1
	w.sb.SetFaults(f)
	var inbox int64
	if err := w.db.QueryRow(ctx, `select id from keapsync.webhook_inbox`).Scan(&inbox); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		if did, err := w.worker.RunOnce(ctx); !did || err != nil {
			t.Fatalf("attempt %d: %v, %v; want the group taken and its failure recorded", attempt, did, err)
		}
		w.due(t)
	}
	var status *int
	var cause, payloadInbox string
	if err := w.db.QueryRow(ctx, `select http_status, error, payload ->> 'inbox_id' from keapsync.dead_letters
	    where account_id = $1 and source = 'ingest' and object_type = 'contact' and status = 'parked'`, w.account).Scan(&status, &cause, &payloadInbox); err != nil {
		t.Fatalf("no dead letter after %d failed attempts: %v", w.worker.MaxAttempts, err)
	}
	if status == nil || *status != 500 || !strings.HasPrefix(cause, "gave up after repeated failures: ") || payloadInbox != strconv.FormatInt(inbox, 10) {
		t.Errorf("dead letter: status %v, error %q, inbox_id %s; want 500, why it gave up, inbox row %d", status, cause, payloadInbox, inbox)
	}
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is not null and attempts = 2`); got != 1 {
		t.Error("the parked delivery is not closed after 2 attempts")
	}
	if did, err := w.worker.RunOnce(ctx); did || err != nil {
		t.Errorf("after parking: %v, %v; want nothing due", did, err)
	}
}

// The retry's own bookkeeping lost too (Keap down, then the database): RunOnce says so, and the
// delivery waits as it was, no attempt counted.
func TestRetryBookkeepingLostKeepsTheDelivery(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	id, name := editedAndDelivered(t, w)
	f := w.sb.Faults()
	f.ErrorRate = 1
	w.sb.SetFaults(f)
	db := newFlakyDB(w.db)
	w.worker.DB = db
	db.failOn("last_error = $2", 1)
	if _, err := w.worker.RunOnce(ctx); err == nil || !strings.Contains(err.Error(), "schedule inbox retry") {
		t.Fatalf("RunOnce: %v; want the retry's failure", err)
	}
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null and attempts = 0`); got != 1 {
		t.Fatal("the delivery is not waiting as it was")
	}
	w.sb.SetFaults(sandbox.Faults{})
	w.drain(t)
	if got := w.nameOf(t, id); got != name {
		t.Errorf("after both came back: %q, want %q", got, name)
	}
}

// Started, the worker drains the inbox by itself and outlives a database outage: each failed
// round is logged and the loop polls on; Stop ends it cleanly.
func TestStartedWorkerOutlivesADatabaseOutage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	id, name := editedAndDelivered(t, w)
	db := newFlakyDB(w.db)
	db.failOn("begin", 3)
	w.worker.DB = db
	w.worker.PollEvery = time.Millisecond
	w.worker.Loops = 2
	if err := w.worker.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A bound so a broken loop fails the test instead of hanging it; the drain takes a few
	// milliseconds.
	deadline := time.Now().Add(30 * time.Second)
	for w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the started worker never drained the inbox")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.worker.Stop()
	if err := w.worker.Err(); err != nil {
		t.Errorf("Err after Stop: %v", err)
	}
	if db.failed("begin") != 3 {
		t.Errorf("%d rounds failed, want 3: the loop must go on after a failure", db.failed("begin"))
	}
	if got := w.nameOf(t, id); got != name {
		t.Errorf("%q, want %q", got, name)
	}
}

// An order's payments cannot be read: a 404 (the order deleted between the two reads) applies
// the order as it is, leaving its payments to the delete that follows; any other failure retries
// the whole delivery, applying nothing.
func TestOrderPaymentsUnreadable(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	order, err := w.sb.CreateOrder(map[string]any{"contact_id": idOf(t, w.sb.Snapshot().Contacts[0]), "order_title": "Paid", "order_type": "Offline",
		"order_items": []any{map[string]any{"product_id": 1, "quantity": 1, "price": "25"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sb.PayOrder(order, 10); err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	w.worker.Window = 0
	gone := &keap.APIError{Status: 404, Body: []byte(`{"message":"Order not found"}`)}
	var answer error = keapDown
	w.useKeap(&keapWith{Keap: w.api, orderPayments: func(context.Context, keap.ID) ([]keap.Payment, error) { return nil, answer }})

	w.deliver(t, "order.add", order)
	if _, err := w.worker.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.orders where keap_id = $1`, order); got != 0 {
		t.Fatal("an order was applied without its payments while Keap could not say what they are")
	}
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null and attempts = 1 and last_error like '%payments of order%'`); got != 1 {
		t.Fatal("the delivery is not waiting for a retry that says why")
	}

	answer = gone
	w.due(t)
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.orders where keap_id = $1`, order); got != 1 {
		t.Error("the order was not applied when its payments answered 404")
	}
	if got := w.count(t, `select count(*) from keapsync.dead_letters`); got != 0 {
		t.Errorf("%d dead letters; a 404 on payments is the order going, not a bad record", got)
	}
}
