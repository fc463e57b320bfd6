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
		w.exec(`insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload)
		        values ($1, 'contact.edit', 'contact', array[$2::bigint], '{}')`, w.account, kid)
		for more := true; more; {
			var err error
			if more, err = worker.RunOnce(ctx); err != nil {
				t.Error(err)
				return
			}
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
