package sandbox

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Keap's notes: v1 lists them by contact and by user, v2 carries their custom fields, which a
// person may set and clear in the app too, and a contact's deletion takes its notes with it.
// What Keap refuses (a note moved to no contact, an id, page or filter that does not parse, a
// note that is not there or not under the contact named, a v2 update of more than the custom
// fields) is a 400 or 404 in the version's error shape and changes nothing.
func TestNoteEndpointsAsKeapDoes(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 3, Seed: 13})
	c := newClient(t, srv, false)
	raw := newClient(t, srv, true) // refused requests on purpose
	const v1, v2 = "/crm/rest/v1/notes", "/crm/rest/v2"
	field, err := srv.AddCustomFieldTo(recordTask, "Mood", "Text") // notes share the tasks' fields
	if err != nil {
		t.Fatal(err)
	}

	var first, second map[string]any
	c.json("POST", v1, map[string]any{"contact_id": 1, "title": "Called", "user_id": 7}, 201, &first)
	c.json("POST", v1, map[string]any{"contact_id": 2, "title": "Emailed", "user_id": 8}, 201, &second)
	firstID, secondID := num(first["id"]), num(second["id"])
	listed := func(query string) string {
		var list struct {
			Notes []map[string]any `json:"notes"`
		}
		c.json("GET", v1+"?"+query, nil, 200, &list)
		var titles []string
		for _, n := range list.Notes {
			titles = append(titles, n["title"].(string))
		}
		return fmt.Sprint(titles)
	}
	if got := listed("contact_id=1"); got != "[Called]" {
		t.Errorf("contact 1's notes: %s", got)
	}
	if got := listed("user_id=8"); got != "[Emailed]" {
		t.Errorf("user 8's notes: %s", got)
	}

	customOf := func(id int64) string {
		var list struct {
			Notes []map[string]any `json:"notes"`
		}
		c.json("GET", fmt.Sprintf("%s/notes?fields=custom_fields&filter=ids%%3D%%3D%d", v2, id), nil, 200, &list)
		if len(list.Notes) != 1 {
			t.Fatalf("note %d by id: %v", id, list.Notes)
		}
		return fmtJSON(t, list.Notes[0]["custom_fields"])
	}
	if err := srv.SetNoteCustomField(firstID, field, "cheerful"); err != nil {
		t.Fatal(err)
	}
	if got, want := customOf(firstID), fmt.Sprintf(`[{"content":"cheerful","id":"%d"}]`, field); got != want {
		t.Errorf("note %d's custom fields after a person set one: %s, want %s", firstID, got, want)
	}
	if err := srv.SetNoteCustomField(firstID, field, nil); err != nil {
		t.Fatal(err)
	}
	if got := customOf(firstID); got != "[]" {
		t.Errorf("note %d's custom fields after a person cleared one: %s", firstID, got)
	}
	for what, err := range map[string]error{
		fmt.Sprintf("note %d", 99999):         srv.SetNoteCustomField(99999, field, "x"),
		fmt.Sprintf("custom field %d", 99999): srv.SetNoteCustomField(firstID, 99999, "x"),
	} {
		if err == nil || !strings.Contains(err.Error(), what) {
			t.Errorf("a person setting a custom field of a %s that is not there: %v", what, err)
		}
	}

	before, _ := json.Marshal(srv.Snapshot())
	notes := fmt.Sprintf("%s/contacts/1/notes/%d?update_mask=custom_fields", v2, firstID)
	refused(t, raw, []refusal{
		{"PATCH", fmt.Sprintf("%s/%d", v1, firstID), map[string]any{"contact_id": 99999}, 400, "Contact not found"},
		{"POST", v1, map[string]any{"title": "Whose?"}, 400, "Input could not be converted"}, // the document requires the contact
		{"POST", v1, map[string]any{"contact_id": 99999, "title": "Whose?"}, 400, "Contact not found"},
		{"GET", v1 + "/abc", nil, 400, "Invalid id: abc"},
		{"GET", v1 + "/99999", nil, 404, "Note with ID 99999 not found"},
		{"GET", v1 + "?limit=-1", nil, 400, "Invalid limit: -1"},
		{"GET", v1 + "?contact_id=abc", nil, 400, "Invalid contact_id: abc"},
		{"PATCH", fmt.Sprintf("%s/contacts/2/notes/%d?update_mask=custom_fields", v2, firstID), map[string]any{"user_id": "1", "custom_fields": []any{}}, 404,
			fmt.Sprintf("Note with ID %d not found", firstID)},
		{"PATCH", strings.Replace(notes, "custom_fields", "title", 1), map[string]any{"user_id": "1", "title": "x"}, 400, "The sandbox updates only custom_fields here: title"},
		{"PATCH", strings.Replace(notes, "/contacts/1/", "/contacts/abc/", 1), map[string]any{"user_id": "1", "custom_fields": []any{}}, 400, "Invalid contact_id: abc"},
		{"PATCH", fmt.Sprintf("%s/contacts/1/notes/abc?update_mask=custom_fields", v2), map[string]any{"user_id": "1", "custom_fields": []any{}}, 400, "Invalid id: abc"},
		{"PATCH", notes, map[string]any{"user_id": "1", "custom_fields": []any{map[string]any{"id": "99999", "content": "x"}}}, 400, "Invalid custom field id: 99999"},
		{"GET", v2 + "/notes?filter=ids%3D%3D1,x", nil, 400, "Invalid filter: ids==1,x"},
		{"GET", v2 + "/notes?filter=contact_id", nil, 400, "Invalid filter: contact_id"},
		{"GET", v2 + "/notes?filter=title%3D%3Dx", nil, 400, "Invalid filter: title==x"},
		{"GET", v2 + "/notes?page_size=x", nil, 400, "Invalid page_size: x"},
	})
	if after, _ := json.Marshal(srv.Snapshot()); string(after) != string(before) {
		t.Error("a refused request changed the sandbox's state")
	}

	var byContact struct {
		Notes []map[string]any `json:"notes"`
	}
	c.json("GET", v2+"/notes?filter=contact_id%3D%3D2", nil, 200, &byContact)
	if len(byContact.Notes) != 1 || fmt.Sprint(byContact.Notes[0]["id"]) != fmt.Sprint(secondID) {
		t.Errorf("v2 notes of contact 2: %v; want note %d alone", byContact.Notes, secondID)
	}

	if err := srv.DeleteContact(1); err != nil {
		t.Fatal(err)
	}
	refused(t, raw, []refusal{{"GET", fmt.Sprintf("%s/%d", v1, firstID), nil, 404, fmt.Sprintf("Note with ID %d not found", firstID)}})
	if got := listed(""); got != "[Emailed]" {
		t.Errorf("notes after contact 1 was deleted: %s; want contact 2's alone", got)
	}
}
