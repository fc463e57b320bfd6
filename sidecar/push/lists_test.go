package push

import (
	"encoding/json"
	"testing"
)

// An update's field-keyed list goes whole: Keap's items with ours in their place, and ours that
// Keap does not hold yet after them. A Keap contact whose list does not decode is an error, not a
// list of ours alone, which would remove Keap's other items.
func TestUpdateBodyCompletesListsFromKeap(t *testing.T) {
	t.Parallel()
	body := json.RawMessage(`{"phone_numbers":[{"field":"PHONE1","number":"555-0001"},{"field":"PHONE3","number":"555-0003"}],"job_title":"Boss"}`)
	current := json.RawMessage(`{"id":1,"phone_numbers":[{"field":"PHONE2","number":"555-9002"},{"field":"PHONE1","number":"555-9001"}]}`)
	got, err := updateBody(body, current)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"job_title":"Boss","phone_numbers":[{"field":"PHONE2","number":"555-9002"},{"field":"PHONE1","number":"555-0001"},{"field":"PHONE3","number":"555-0003"}]}`
	if string(got) != want {
		t.Errorf("body\n %s\nwant\n %s", got, want)
	}
	for name, current := range map[string]string{
		"a list that is not a list":       `{"phone_numbers":{"field":"PHONE2"}}`,
		"a contact that is not an object": `[1]`,
	} {
		if got, err := updateBody(body, json.RawMessage(current)); err == nil {
			t.Errorf("%s: sent %s", name, got)
		}
	}
	for name, body := range map[string]string{
		"a body that is not an object": `[1]`,
		"our list that is not a list":  `{"phone_numbers":{"field":"PHONE1"}}`,
	} {
		if got, err := updateBody(json.RawMessage(body), current); err == nil {
			t.Errorf("%s: sent %s", name, got)
		}
	}
	if got, err := updateBody(body, json.RawMessage(`{"phone_numbers":null}`)); err != nil || !hasFieldLists(got) {
		t.Errorf("Keap holding no phones: %s, %v; want ours", got, err)
	}
}

// A clear Keap ignored is noticed in its answer, and an answer that does not decode is an error.
func TestClearsReadFromKeapsAnswer(t *testing.T) {
	t.Parallel()
	body := json.RawMessage(`{"given_name":null,"job_title":null,"family_name":"Kept"}`)
	cleared := clearedStrings(body)
	if len(cleared) != 2 {
		t.Fatalf("cleared %v, want given_name and job_title", cleared)
	}
	if again := stillSet(json.RawMessage(`{"given_name":"Ada","job_title":""}`), cleared); len(again) != 1 || again[0] != "given_name" {
		t.Errorf("still set %v, want given_name", again)
	}
	for _, broken := range []string{`"text"`, `[`} {
		if clearedStrings(json.RawMessage(broken)) != nil || stillSet(json.RawMessage(broken), cleared) != nil || hasFieldLists(json.RawMessage(broken)) {
			t.Errorf("%s: read as holding something", broken)
		}
		if _, err := withoutEmpty(json.RawMessage(broken), cleared); err == nil {
			t.Errorf("%s: an answer that does not decode taken as one", broken)
		}
	}
}
