package ingest_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

// Tasks on contacts arrive by backfill and hooks (create, complete, delete as a person in Keap),
// and a lost hook is caught by reconcile and the delete sweep.
func TestTasksArrive(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	contact := idOf(t, w.sb.Snapshot().Contacts[0])
	cid := strconv.FormatInt(contact, 10)
	first, err := w.sb.CreateTask(map[string]any{"title": "Call back", "assigned_to_user_id": "1", "contact_id": cid,
		"due_time": "2026-03-01T09:00:00.000Z", "priority": "ESSENTIAL"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.tasks t join keap.contacts c on c.account_id = t.account_id and c.keap_id = t.contact_keap_id
	    where t.keap_id = $1 and t.title = 'Call back' and t.due_time = '2026-03-01T09:00:00Z' and not t.completed and c.keap_id = $2`, first, contact); got != 1 {
		t.Fatal("the backfilled task is not here, on its contact")
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	second, err := w.sb.CreateTask(map[string]any{"title": "Send quote", "assigned_to_user_id": "1", "contact_id": cid})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sb.EditTask(first, map[string]any{"completed": true}); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.tasks where keap_id = $1 and completed and completion_time is not null`, first); got != 1 {
		t.Error("the completion did not arrive")
	}
	if got := w.count(t, `select count(*) from keap.tasks where keap_id = $1 and title = 'Send quote'`, second); got != 1 {
		t.Error("the new task did not arrive")
	}
	if err := w.sb.DeleteTask(second); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.tasks where keap_id = $1`, second); got != 0 {
		t.Error("the deleted task is still here")
	}

	for _, h := range w.sb.Hooks() {
		if err := w.api.DeleteHook(ctx, h.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.sb.EditTask(first, map[string]any{"title": "Called back"}); err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Reconcile(ctx, w.account, []string{"task"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.tasks where keap_id = $1 and title = 'Called back'`, first); got != 1 {
		t.Error("reconcile did not catch the edit whose hook was lost")
	}
	if err := w.sb.DeleteTask(first); err != nil {
		t.Fatal(err)
	}
	w.sweptAway(t, "task", "tasks", first)
}
