package ingest_test

import (
	"context"
	"strings"
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

	// A person writes, edits and deletes notes in Keap. More changes than the worker's list
	// threshold still cost a GET each: v1 cannot list only what changed, and listing every note
	// of the account to find a few would cost more the more notes there are.
	w.sb.ClearRequests()
	second, err := w.sb.CreateNote(map[string]any{"contact_id": other, "body": "Wants a quote", "type": "Email"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sb.EditNote(first, map[string]any{"body": "Called back", "title": nil}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := w.sb.CreateNote(map[string]any{"contact_id": other, "body": "burst"}); err != nil {
			t.Fatal(err)
		}
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.notes where body = 'burst' and contact_keap_id = $1`, other); got != 3 {
		t.Errorf("%d of the 3 notes written at once arrived", got)
	}
	// v1 cannot list notes by time: a burst costs the cheaper of a GET per note and one listing
	// of them all (here one page), never both and never more.
	lists, gets := 0, 0
	for _, r := range w.sb.Requests() {
		switch {
		case r.Method == "GET" && strings.HasSuffix(r.Path, "/v1/notes"):
			lists++
		case r.Method == "GET" && strings.Contains(r.Path, "/v1/notes/"):
			gets++
		}
	}
	if lists > 1 || (lists == 1 && gets > 0) || gets > 5 {
		t.Errorf("5 changed notes cost %d listings and %d GETs; want one listing or at most a GET each", lists, gets)
	}
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

	// Hooks lost from here on: what arrives, arrives as the test delivers it.
	for _, h := range w.sb.Hooks() {
		if err := w.api.DeleteHook(ctx, h.Key); err != nil {
			t.Fatal(err)
		}
	}

	// A contact and a note on it, whose hooks come the other way round: the note, refused for
	// its missing contact, is looked at again once the contact is here, and arrives.
	fresh, err := w.sb.CreateContact(map[string]any{"given_name": "New", "phone_numbers": []map[string]string{{"number": "555-0109", "field": "PHONE1"}}})
	if err != nil {
		t.Fatal(err)
	}
	onFresh, err := w.sb.CreateNote(map[string]any{"contact_id": fresh, "title": "First call"})
	if err != nil {
		t.Fatal(err)
	}
	w.deliver(t, "note.add", onFresh)
	w.drain(t)
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null and object_type = 'note' and $1 = any (object_ids)`, onFresh); got != 1 {
		t.Fatalf("the note refused for its missing contact is not to be looked at again (%d inbox rows)", got)
	}
	w.deliver(t, "contact.add", fresh)
	w.drain(t)
	if _, err := w.db.Exec(ctx, `update keapsync.webhook_inbox set next_attempt_at = now() where processed_at is null`); err != nil {
		t.Fatal(err) // its backoff, passed
	}
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.notes where keap_id = $1 and contact_keap_id = $2`, onFresh, fresh); got != 1 {
		t.Error("the note whose hook came before its contact's did not arrive")
	}
	if got := w.count(t, `select count(*) from keapsync.dead_letters where object_type = 'note' and keap_id = $1 and status <> 'done'`, onFresh); got != 0 {
		t.Error("the note's dead letter was not settled when it arrived")
	}

	// Reconcile and the delete sweep catch up with what no hook reported.
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
	w.sweptAway(t, "note", "notes", first)

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
