package push_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
)

// meanwhile is a Keap client whose first contact PATCH runs meanwhile before it goes: whatever
// happens there happens after the push read its request and before Keap takes the write.
type meanwhile struct {
	*keap.Client
	once sync.Once
	do   func()
}

func (m *meanwhile) UpdateContact(ctx context.Context, id keap.ID, body any, updateMask ...string) (*keap.Contact, error) {
	m.once.Do(m.do)
	return m.Client.UpdateContact(ctx, id, body, updateMask...)
}

// A Keap edit newer than the local one, applied by its hook while our PATCH of the local edit is
// on its way, wins the field here (newest_wins), but Keap then takes our PATCH. mark_pushed used
// to record the sent value as agreed and drop the queue row: Postgres kept Keap's value, Keap
// kept ours, for good (the chaos soak's "contact 196 phone: Keap L84, Postgres K370", seed 2).
// Now the record is queued again and the value the merge chose reaches Keap.
func TestKeapEditThatWinsWhileOurPatchIsOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	local, kid := w.synced(0)
	worker := &ingest.Worker{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return w.api, nil }}
	api := &meanwhile{Client: w.api, do: func() {
		if err := w.sb.EditContact(kid, map[string]any{"job_title": "K370"}); err != nil {
			t.Error(err)
		}
		if err := w.hookEdit(ctx, kid); err != nil {
			t.Error(err)
		}
		if err := drainInbox(ctx, worker); err != nil {
			t.Error(err)
		}
	}}
	w.start(w.pusher(w.config(func(context.Context, string) (push.Keap, error) { return api, nil })).Run)
	w.quiet()

	w.exec(`update keap.contacts set job_title = 'L84' where id = $1`, local)
	w.quiet()
	var pg string
	if err := w.db.QueryRow(ctx, `select job_title from keap.contacts where id = $1`, local).Scan(&pg); err != nil {
		t.Fatal(err)
	}
	if kp := w.contact(kid).JobTitle; pg != "K370" || kp != "K370" {
		t.Fatalf("job title: Postgres %q, Keap %q; want K370 on both sides (Keap's edit is the newer)", pg, kp)
	}
	patches := 0
	for _, c := range w.writes() {
		if c == "PATCH /v1/contacts/"+strconv.FormatInt(kid, 10)+"?update_mask=job_title" {
			patches++
		}
	}
	if patches != 2 {
		t.Errorf("%d PATCHes of the job title, want 2 (ours, then the merge's choice): %v", patches, w.writes())
	}
}

// created is a Keap client that runs then once the first contact create has been answered,
// before the answer comes back to the pusher.
type created struct {
	*keap.Client
	once sync.Once
	then func(id int64)
}

func (c *created) UpsertContact(ctx context.Context, duplicateOption string, body any) (*keap.Contact, error) {
	got, err := c.Client.UpsertContact(ctx, duplicateOption, body)
	if err == nil {
		c.once.Do(func() { c.then(int64(got.ID)) })
	}
	return got, err
}

// Someone edits a contact in Keap the moment our create made it, and the edit's hook comes before
// the create's answer is recorded: the hook imports the record as a second row, which
// mark_pushed drops for ours. The edit used to go with it (only the create's older answer was
// applied); now mark_pushed has the record read again, and the edit lands here.
func TestKeapEditOfOurNewContactBeforeItsAnswer(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	worker := &ingest.Worker{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return w.api, nil }}
	// t.Error, not t.Fatal: it runs in the pusher's goroutine as well as the test's.
	drain := func() {
		if err := drainInbox(ctx, worker); err != nil {
			t.Error(err)
		}
	}
	api := &created{Client: w.api, then: func(id int64) {
		if err := w.sb.EditContact(id, map[string]any{"job_title": "Edited in Keap"}); err != nil {
			t.Error(err)
		}
		if err := w.hookEdit(ctx, id); err != nil {
			t.Error(err)
		}
		drain()
	}}
	w.start(w.pusher(w.config(func(context.Context, string) (push.Keap, error) { return api, nil })).Run)
	w.quiet()

	w.exec(`insert into keap.contacts (account_id, given_name, email) values ($1, 'New', 'new.one@example.com')`, w.account)
	w.quiet()
	drain() // the read mark_pushed asked for
	var rows int64
	var kid int64
	var job string
	if err := w.db.QueryRow(ctx, `select count(*) over (), keap_id, coalesce(job_title, '') from keap.contacts
	                               where email = 'new.one@example.com'`).Scan(&rows, &kid, &job); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("%d rows for the new contact, want 1", rows)
	}
	if kp := w.contact(kid).JobTitle; job != "Edited in Keap" || kp != job {
		t.Fatalf("job title: Postgres %q, Keap %q; want Keap's edit on both sides", job, kp)
	}
}
