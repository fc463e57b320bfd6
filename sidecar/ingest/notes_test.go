package ingest_test

import (
	"context"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

// Notes on contacts arrive by backfill and hooks (written, edited, cleared and deleted as a
// person in Keap), on their contact; a lost hook is caught by reconcile and the delete sweep; a
// contact deleted in Keap takes its notes along here too.
func TestNotesArrive(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	contact := idOf(t, w.sb.Snapshot().Contacts[0])
	other := idOf(t, w.sb.Snapshot().Contacts[1])
	first, err := w.sb.CreateNote(map[string]any{"contact_id": contact, "title": "Called", "body": "Left a message",
		"type": "Call", "user_id": 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.notes n join keap.contacts c on c.account_id = n.account_id and c.keap_id = n.contact_keap_id
	    where n.keap_id = $1 and n.title = 'Called' and n.body = 'Left a message' and n.type = 'Call' and n.user_id = 1
	      and n.last_updated is not null and n.date_created is not null and c.keap_id = $2`, first, contact); got != 1 {
		t.Fatal("the backfilled note is not here, on its contact")
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}

	// A person writes, edits and deletes notes in Keap.
	second, err := w.sb.CreateNote(map[string]any{"contact_id": other, "body": "Wants a quote", "type": "Email"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sb.EditNote(first, map[string]any{"body": "Called back", "title": nil}); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.notes where keap_id = $1 and body = 'Called back' and title is null`, first); got != 1 {
		t.Error("the edit (a new body, the title cleared) did not arrive")
	}
	if got := w.count(t, `select count(*) from keap.notes where keap_id = $1 and body = 'Wants a quote' and contact_keap_id = $2`, second, other); got != 1 {
		t.Error("the new note did not arrive on its contact")
	}
	if err := w.sb.DeleteNote(second); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.notes where keap_id = $1`, second); got != 0 {
		t.Error("the deleted note is still here")
	}

	// A contact and a note on it, written one after the other: both arrive.
	fresh, err := w.sb.CreateContact(map[string]any{"given_name": "New", "phone_numbers": []map[string]string{{"number": "555-0109", "field": "PHONE1"}}})
	if err != nil {
		t.Fatal(err)
	}
	onFresh, err := w.sb.CreateNote(map[string]any{"contact_id": fresh, "title": "First call"})
	if err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.notes where keap_id = $1 and contact_keap_id = $2`, onFresh, fresh); got != 1 {
		t.Error("the note on the contact written just before it did not arrive")
	}

	// Hooks lost: reconcile and the delete sweep catch up.
	for _, h := range w.sb.Hooks() {
		if err := w.api.DeleteHook(ctx, h.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.sb.EditNote(first, map[string]any{"title": "Call log"}); err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Reconcile(ctx, w.account, []string{"note"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.notes where keap_id = $1 and title = 'Call log' and body = 'Called back'`, first); got != 1 {
		t.Error("reconcile did not catch the edit whose hook was lost")
	}
	if err := w.sb.DeleteNote(first); err != nil {
		t.Fatal(err)
	}
	if n, err := w.sweeper.SweepDeletes(ctx, w.account, []string{"note"}); err != nil || n != 1 {
		t.Errorf("delete sweep: %d, %v", n, err)
	}
	if got := w.count(t, `select count(*) from keap.notes where keap_id = $1`, first); got != 0 {
		t.Error("the delete sweep left the note deleted in Keap")
	}

	// The contact deleted in Keap goes with its notes, and nothing of them is left to sweep.
	if err := w.sb.DeleteContact(fresh); err != nil {
		t.Fatal(err)
	}
	if n, err := w.sweeper.SweepDeletes(ctx, w.account, []string{"contact"}); err != nil || n != 1 {
		t.Fatalf("contact delete sweep: %d, %v", n, err)
	}
	if got := w.count(t, `select count(*) from keap.notes where keap_id = $1`, onFresh); got != 0 {
		t.Error("the note of the deleted contact is still here")
	}
	if got := w.count(t, `select count(*) from keapsync.sync_state where account_id = $1 and object_type = 'note' and keap_id = $2`, w.account, onFresh); got != 0 {
		t.Error("the sync state of the note deleted with its contact is left behind")
	}
}
