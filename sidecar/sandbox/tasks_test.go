package sandbox

import (
	"encoding/json"
	"fmt"
	"testing"
)

// Keap's v2 task endpoints: a task keeps what it is given and shows it back, an update_mask
// clears what it names and the body leaves out, completing stamps the completion time and
// reopening drops it, the listing filters by contact and orders by due time, and a deleted task
// is gone. What Keap refuses (no assignee, a due time or contact that is not one, a body, id,
// filter, order or page that does not parse, a task that is not there) is a 400 or 404 in v2's
// error shape and changes nothing.
func TestTaskEndpointsAsKeapDoes(t *testing.T) {
	t.Parallel()
	srv, clock := start(t, Options{Contacts: 3, Seed: 11})
	c := newClient(t, srv, false)
	raw := newClient(t, srv, true) // refused requests on purpose
	const v2 = "/crm/rest/v2/tasks"

	var early, late map[string]any
	c.json("POST", v2, map[string]any{"title": "Call", "description": "about the renewal", "type": "Call", "priority": "ESSENTIAL",
		"assigned_to_user_id": "1", "contact_id": "1", "due_time": "2026-03-02T09:00:00.000Z"}, 201, &late)
	clock.Advance(1e9)
	c.json("POST", v2, map[string]any{"title": "Email", "assigned_to_user_id": "1", "contact_id": "2",
		"due_time": "2026-03-01T09:00:00.000Z", "completed": true}, 201, &early)
	for k, want := range map[string]any{"title": "Call", "description": "about the renewal", "type": "Call", "priority": "ESSENTIAL",
		"contact_id": "1", "due_time": "2026-03-02T09:00:00.000Z", "completed": false} {
		if late[k] != want {
			t.Errorf("created task's %s: %v, want %v", k, late[k], want)
		}
	}
	if late["completion_time"] != nil || early["completion_time"] != keapTime(clock.Now()) {
		t.Errorf("completion times: open %v, completed %v; want none and the clock's %s", late["completion_time"], early["completion_time"], keapTime(clock.Now()))
	}
	lateID, earlyID := late["id"].(string), early["id"].(string)

	var got map[string]any
	c.json("PATCH", v2+"/"+lateID+"?update_mask=description&update_mask=priority", map[string]any{"priority": "CRITICAL"}, 200, &got)
	if got["description"] != nil || got["priority"] != "CRITICAL" || got["title"] != "Call" {
		t.Errorf("after a masked patch: %v; want the description cleared, the priority set, the title kept", got)
	}
	callEdited := got["modification_time"].(string)
	got = nil // a fresh map: decoding into the last would keep what the answer leaves out
	c.json("PATCH", v2+"/"+earlyID, map[string]any{"completed": false}, 200, &got)
	if got["completed"] != false || got["completion_time"] != nil {
		t.Errorf("reopened task: %v; want not completed and no completion time", got)
	}

	titles := func(path string) []string {
		var list struct {
			Tasks []map[string]any `json:"tasks"`
		}
		c.json("GET", path, nil, 200, &list)
		var out []string
		for _, tk := range list.Tasks {
			out = append(out, tk["title"].(string))
		}
		return out
	}
	if got := fmt.Sprint(titles(v2 + "?order_by=due_time%20desc")); got != "[Call Email]" {
		t.Errorf("by due time, descending: %s", got)
	}
	if got := fmt.Sprint(titles(v2 + "?order_by=create_time%20desc")); got != "[Email Call]" {
		t.Errorf("by create time, descending: %s", got)
	}
	if got := fmt.Sprint(titles(v2 + "?filter=contact_id%3D%3D2")); got != "[Email]" {
		t.Errorf("contact 2's tasks: %s", got)
	}
	if got := fmt.Sprint(titles(v2 + "?filter=until_time%3D%3D" + callEdited)); got != "[Call]" {
		t.Errorf("tasks last changed by %s (Email was reopened after): %s", callEdited, got)
	}

	before, _ := json.Marshal(srv.Snapshot())
	refused(t, raw, []refusal{
		{"POST", v2, map[string]any{"title": "Nobody's"}, 400, "Input could not be converted"}, // the document requires an assignee
		{"POST", v2, map[string]any{"title": "X", "assigned_to_user_id": "1", "due_time": "Tuesday"}, 400, "Invalid due_time: Tuesday"},
		{"POST", v2, map[string]any{"title": "X", "assigned_to_user_id": "1", "contact_id": "99999"}, 400, "Contact not found: 99999"},
		{"POST", v2, "{", 400, "Input could not be converted"},
		{"PATCH", v2 + "/" + lateID, map[string]any{"contact_id": "nobody"}, 400, "Contact not found: nobody"},
		{"PATCH", v2 + "/99999", map[string]any{"title": "X"}, 404, "Task with ID 99999 not found"},
		{"GET", v2 + "/99999", nil, 404, "Task with ID 99999 not found"},
		{"GET", v2 + "/abc", nil, 400, "Invalid id: abc"},
		{"DELETE", v2 + "/99999", nil, 404, "Task with ID 99999 not found"},
		{"DELETE", v2 + "/abc", nil, 400, "Invalid id: abc"},
		{"GET", v2 + "?page_size=abc", nil, 400, "Invalid page_size: abc"},
		{"GET", v2 + "?filter=contact_id", nil, 400, "Invalid filter: contact_id"},
		{"GET", v2 + "?filter=title%3D%3DCall", nil, 400, "Invalid filter: title==Call"},
		{"GET", v2 + "?filter=since_time%3D%3Dyesterday", nil, 400, "Invalid filter: since_time==yesterday"},
		{"GET", v2 + "?order_by=title", nil, 400, "Invalid order_by: title"},
	})
	if after, _ := json.Marshal(srv.Snapshot()); string(after) != string(before) {
		t.Error("a refused request changed the sandbox's state")
	}

	c.json("DELETE", v2+"/"+lateID, nil, 204, nil)
	refused(t, raw, []refusal{{"GET", v2 + "/" + lateID, nil, 404, "Task with ID " + lateID + " not found"}})
	if got := fmt.Sprint(titles(v2)); got != "[Email]" {
		t.Errorf("tasks after deleting one: %s", got)
	}
}
