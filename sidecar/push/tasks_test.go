package push_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// Tasks inserted, completed and deleted here reach Keap, ids sent as v2 strings.
func TestPushesTasks(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	w.pushing()
	_, contact := w.synced(0)

	id := w.int(`insert into keap.tasks (account_id, title, contact_keap_id, assigned_to_user_id, due_time)
	             values ($1, 'Follow up', $2, '1', '2026-04-01T10:00:00Z') returning id`, w.account, contact)
	w.quiet()
	kid := w.int(`select coalesce(keap_id, 0) from keap.tasks where id = $1`, id)
	if kid == 0 {
		t.Fatal("no Keap id written back")
	}
	task := func() map[string]any {
		o, err := w.api.GetObject(ctx, "/v2/tasks", keapID(kid))
		if err != nil {
			t.Fatal(err)
		}
		return jsonMap(t, o.Raw)
	}
	if got := task(); got["title"] != "Follow up" || got["contact_id"] != strconv.FormatInt(contact, 10) || got["due_time"] != "2026-04-01T10:00:00.000Z" {
		t.Errorf("in Keap: %v", got)
	}
	w.exec(`update keap.tasks set completed = true where id = $1`, id)
	w.quiet()
	if got := task(); got["completed"] != true {
		t.Errorf("completion not in Keap: %v", got)
	}
	if w.int(`select count(*) from keap.tasks where id = $1 and completion_time is not null`, id) != 1 {
		t.Error("Keap's completion time did not come back with the answer")
	}
	w.exec(`delete from keap.tasks where id = $1`, id)
	w.quiet()
	if _, err := w.api.GetObject(ctx, "/v2/tasks", keapID(kid)); err == nil {
		t.Error("the task deleted here is still in Keap")
	}
}

func keapID(v int64) keap.ID { return keap.ID(v) }

func jsonMap(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
