package push_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// heldRead is a Keap client whose next GET of one contact, once Keap has answered, waits for
// release before its answer goes back: a hook's read answered before our PATCH went, applied
// after the PATCH's answer was.
type heldRead struct {
	*keap.Client
	mu                sync.Mutex
	id                keap.ID
	answered, release chan struct{}
}

func (h *heldRead) hold(id keap.ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.id, h.answered, h.release = id, make(chan struct{}), make(chan struct{})
}

func (h *heldRead) GetContact(ctx context.Context, id keap.ID, optional ...string) (*keap.Contact, error) {
	c, err := h.Client.GetContact(ctx, id, optional...)
	h.mu.Lock()
	held := h.id == id && h.answered != nil
	var answered, release chan struct{}
	if held {
		answered, release, h.id = h.answered, h.release, 0
	}
	h.mu.Unlock()
	if held {
		close(answered)
		<-release
	}
	return c, err
}

// Under whole-second stamps, our PATCH's answer and a Keap-side edit made in the same second
// carry one stamp. A hook's read of the Keap edit, answered before the PATCH went and applied
// after its answer, used to be merged over it (equal stamp, other content: taken as newer), and
// Postgres kept the older value for good while Keap held ours (the chaos soak's "Keap L84 vs
// Postgres K370"). Now a version asked for before the stored one was applied is not trusted over
// it: a fresh read is queued, and that read, asked for after, is merged, so a Keap edit made
// later in the same second still lands.
func TestEqualStampsOrderedByWhenAsked(t *testing.T) {
	t.Parallel()
	clock := sandbox.NewManualClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	opts := profileOptions(3, profiles["hardest"])
	opts.Clock = clock
	w := newWorldWith(t, opts)
	ctx := context.Background()
	local, kid := w.synced(0)
	held := &heldRead{Client: w.api}
	worker := &ingest.Worker{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return held, nil }}
	hook := func() {
		if err := w.hookEdit(ctx, kid); err != nil {
			t.Fatal(err)
		}
	}
	drain := func() {
		if err := drainInbox(ctx, worker); err != nil {
			t.Fatal(err)
		}
	}
	names := func() (pg, kp string) {
		var name string
		if err := w.db.QueryRow(ctx, `select given_name from keap.contacts where id = $1`, local).Scan(&name); err != nil {
			t.Fatal(err)
		}
		return name, w.contact(kid).GivenName
	}

	// A person edits the contact in Keap; its hook is applied. Every later change is in this second.
	clock.Advance(time.Second)
	if err := w.sb.EditContact(kid, map[string]any{"given_name": "Keap"}); err != nil {
		t.Fatal(err)
	}
	hook()
	drain()
	if pg, _ := names(); pg != "Keap" {
		t.Fatalf("Postgres has %q after the hook, want Keap", pg)
	}

	// The slot is made before the held read's transaction begins: making one waits for open ones.
	p := w.pusher(w.config(nil))
	w.start(p.Consume)
	w.enqueued()

	// Another hook's read is answered; before it is applied, a local edit is pushed.
	held.hold(keap.ID(kid))
	hook()
	ran := make(chan error, 1)
	go func() { _, err := worker.RunOnce(ctx); ran <- err }()
	<-held.answered
	w.exec(`update keap.contacts set given_name = 'Local' where id = $1`, local)
	// Not w.enqueued: the slot does not confirm past the held read's open transaction.
	w.eventually("the local edit queued", func() bool {
		return w.int(`select count(*) from keapsync.push_queue where local_id = $1`, local) == 1
	})
	w.pushQueued(p)
	var patches int64
	for _, r := range w.sb.Requests() {
		if r.Method == "PATCH" {
			patches++
		}
	}
	if patches == 0 {
		t.Fatal("the local edit was not PATCHed")
	}
	close(held.release)
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	drain() // what the held read left to do (a fresh read), if anything
	if pg, kp := names(); pg != kp || pg != "Local" {
		t.Fatalf("after the held read: Postgres %q, Keap %q; want both Local", pg, kp)
	}
	if n := w.int(`select count(*) from keapsync.sync_state where local_id = $1 and keap_modified = $2`,
		local, clock.Now().Truncate(time.Second)); n != 1 {
		t.Fatalf("the stored version is not this second's (%d rows): the test did not make a tie", n)
	}

	// A Keap edit later in the same second: its hook's read is asked for after our answer was
	// applied, so the equal stamp is merged, not held back.
	if err := w.sb.EditContact(kid, map[string]any{"given_name": "Keap again"}); err != nil {
		t.Fatal(err)
	}
	hook()
	drain()
	if pg, kp := names(); pg != kp || pg != "Keap again" {
		t.Fatalf("after a later Keap edit: Postgres %q, Keap %q; want both \"Keap again\"", pg, kp)
	}
}

// A tie that an apply which did not say when it asked left behind (an older version of the
// same stamp merged over the newer one) is settled by the next reconcile: its listing is asked
// for after the stored version was applied, so Keap's version is merged, without a re-read.
func TestReconcileSettlesEqualStampTie(t *testing.T) {
	t.Parallel()
	clock := sandbox.NewManualClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	opts := profileOptions(3, profiles["hardest"])
	opts.Clock = clock
	w := newWorldWith(t, opts)
	ctx := context.Background()
	local, kid := w.synced(0)
	clock.Advance(time.Second)
	if err := w.sb.EditContact(kid, map[string]any{"given_name": "Newer"}); err != nil {
		t.Fatal(err)
	}
	newer := w.contact(kid).Raw
	older := strings.Replace(string(newer), `"given_name":"Newer"`, `"given_name":"Older"`, 1)
	if older == string(newer) {
		t.Fatalf("no given_name to replace in %s", newer)
	}
	w.exec(`select keapsync.apply_keap_record($1, 'contact', $2::jsonb)`, w.account, string(newer))
	w.exec(`select keapsync.apply_keap_record($1, 'contact', $2::jsonb)`, w.account, older)
	var name string
	if err := w.db.QueryRow(ctx, `select given_name from keap.contacts where id = $1`, local).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "Older" {
		t.Fatalf("Postgres has %q; the test wants the older version of the tie stored", name)
	}
	sweeper := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return w.api, nil }}
	if err := sweeper.Reconcile(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	if err := w.db.QueryRow(ctx, `select given_name from keap.contacts where id = $1`, local).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "Newer" {
		t.Fatalf("after reconcile Postgres has %q, Keap Newer", name)
	}
	if n := w.int(`select count(*) from keapsync.webhook_inbox where event_key = 'contact.recheck'`); n != 0 {
		t.Fatalf("%d re-reads queued; the reconcile's listing was asked for after the stored version", n)
	}
}
