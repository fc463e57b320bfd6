package push_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// Notes written, edited, cleared and deleted in Postgres reach Keap through v1 /notes (ids as
// numbers, a PATCH holding only what changed), and Keap's answers settle them. A note can only
// be on a contact of its own account.
func TestPushesNotes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	w.pushing()
	_, contact := w.synced(0)
	w.sb.ClearRequests()

	id := w.int(`insert into keap.notes (account_id, contact_keap_id, title, body, type, user_id)
	             values ($1, $2, 'Called', 'Left a message', 'Call', 1) returning id`, w.account, contact)
	w.quiet()
	kid := w.int(`select coalesce(keap_id, 0) from keap.notes where id = $1`, id)
	if kid == 0 {
		t.Fatal("no Keap id written back")
	}
	note := func() map[string]any {
		o, err := w.api.GetObject(ctx, "/v1/notes", keap.ID(kid))
		if err != nil {
			t.Fatal(err)
		}
		return jsonMap(t, o.Raw)
	}
	if got := note(); got["title"] != "Called" || got["body"] != "Left a message" || got["type"] != "Call" ||
		got["contact_id"] != float64(contact) || got["user_id"] != float64(1) {
		t.Errorf("in Keap: %v", got)
	}
	if calls := w.writes(); !slices.Equal(calls, []string{"POST /v1/notes"}) {
		t.Errorf("calls: %v", calls)
	}
	if w.int(`select count(*) from keap.notes where id = $1 and date_created is not null and last_updated is not null`, id) != 1 {
		t.Error("Keap's stamps did not come back with the answer")
	}

	w.sb.ClearRequests()
	w.exec(`update keap.notes set body = 'Called back', title = null where id = $1`, id)
	w.quiet()
	if got := note(); got["body"] != "Called back" || got["title"] != nil || got["type"] != "Call" {
		t.Errorf("after the update, in Keap: %v", got)
	}
	if calls := w.writes(); !slices.Equal(calls, []string{fmt.Sprintf("PATCH /v1/notes/%d", kid)}) {
		t.Errorf("calls: %v (v1 takes no update_mask)", calls)
	}
	if n := w.int(`select count(*) from keapsync.sync_state s where s.object_type = 'note'
	    and keapsync.pending_push(s.account_id, 'note', s.local_id) ->> 'op' <> 'none'`); n != 0 {
		t.Errorf("%d notes still differ from what Keap holds", n)
	}

	w.exec(`delete from keap.notes where id = $1`, id)
	w.quiet()
	if _, err := w.api.GetObject(ctx, "/v1/notes", keap.ID(kid)); !errors.Is(err, keap.ErrNotFound) {
		t.Errorf("the note deleted here is still in Keap (%v)", err)
	}

	// Another account's contact, by its Keap id, is no contact of this account.
	var other string
	if err := w.db.QueryRow(ctx, `insert into keapsync.accounts (name) values ('other') returning id`).Scan(&other); err != nil {
		t.Fatal(err)
	}
	_, err := w.db.Exec(ctx, `insert into keap.notes (account_id, contact_keap_id, title) values ($1, $2, 'n')`, other, contact)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23503" {
		t.Errorf("a note on another account's contact: %v", err)
	}
}

// A note's custom fields go through v2, apart from its v1 write: a note inserted with them is
// created through v1 without them (they stay pending), and its next update sends them through
// v2's PATCH under its contact, then its other changed fields through v1; both land, and the
// note then agrees with Keap.
func TestPushesNoteCustomFieldsThroughV2(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	w.pushing()
	_, contact := w.synced(0)
	field, err := w.sb.AddCustomFieldTo("TASK_NOTE_APPOINTMENT", "Priority", "Text")
	if err != nil {
		t.Fatal(err)
	}
	w.sb.ClearRequests()
	id := w.int(`insert into keap.notes (account_id, contact_keap_id, title, user_id, custom_fields)
	             values ($1, $2, 'Called', 1, jsonb_build_object($3::text, 'High')) returning id`, w.account, contact, fmt.Sprint(field))
	w.quiet()
	kid := w.int(`select coalesce(keap_id, 0) from keap.notes where id = $1`, id)
	if calls := w.writes2(); kid == 0 || !slices.Equal(calls, []string{"POST /v1/notes"}) {
		t.Fatalf("create calls %v, Keap id %d", calls, kid)
	}
	if got := w.customInKeap("/v2/notes", kid); len(got) != 0 {
		t.Errorf("custom fields sent with the v1 create: %v", got)
	}

	w.sb.ClearRequests()
	w.exec(`update keap.notes set body = 'Call back Friday' where id = $1`, id)
	w.quiet()
	want := []string{fmt.Sprintf("PATCH /v2/contacts/%d/notes/%d?update_mask=custom_fields", contact, kid), fmt.Sprintf("PATCH /v1/notes/%d", kid)}
	if calls := w.writes2(); !slices.Equal(calls, want) {
		t.Errorf("update calls %v, want %v", calls, want)
	}
	if got := w.customInKeap("/v2/notes", kid); fmt.Sprint(got) != fmt.Sprintf("map[%d:High]", field) {
		t.Errorf("Keap's custom fields of the note: %v", got)
	}
	if n := w.int(`select count(*) from keapsync.sync_state s where s.object_type = 'note'
	    and keapsync.pending_push(s.account_id, 'note', s.local_id) ->> 'op' <> 'none'`); n != 0 {
		t.Errorf("%d notes still differ from what Keap holds", n)
	}
}
