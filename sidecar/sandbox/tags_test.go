package sandbox

import (
	"fmt"
	"testing"
)

func TestTagsAndApplication(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 5})
	c := newClient(t, srv, false)
	var cat, tg map[string]any
	c.json("POST", "/crm/rest/v1/tags/categories", map[string]any{"name": "Imported", "description": "from CSV"}, 200, &cat)
	c.json("POST", "/crm/rest/v1/tags", map[string]any{"name": "Gold", "category": map[string]any{"id": num(cat["id"])}}, 200, &tg)
	tid := num(tg["id"])
	c.json("GET", fmt.Sprintf("/crm/rest/v1/tags/%d", tid), nil, 200, &tg)
	if tg["category"].(map[string]any)["name"] != "Imported" {
		t.Fatalf("tag %v", tg)
	}
	var list struct {
		Tags  []map[string]any
		Count any
	}
	c.json("GET", "/crm/rest/v1/tags?name=Gold", nil, 200, &list)
	if len(list.Tags) != 1 {
		t.Fatalf("tags by name: %v", list.Tags)
	}

	var before, after map[string]any
	c.json("GET", "/crm/rest/v1/contacts/2", nil, 200, &before)
	// Contact side: the answer is an object keyed by tag id (the spec's Entry array is wrong).
	var res map[string]string
	c.json("POST", "/crm/rest/v1/contacts/2/tags", map[string]any{"tagIds": []int64{tid, 9999}}, 200, &res)
	if res[fmt.Sprint(tid)] != "SUCCESS" || res["9999"] != "TAG_ID_NOT_FOUND" {
		t.Fatalf("apply results %v", res)
	}
	c.json("POST", "/crm/rest/v1/contacts/2/tags", map[string]any{"tagIds": []int64{tid}}, 200, &res)
	if res[fmt.Sprint(tid)] != "DUPLICATE" {
		t.Fatalf("re-apply %v", res)
	}
	c.json("GET", "/crm/rest/v1/contacts/2", nil, 200, &after)
	if after["last_updated"].(string) <= before["last_updated"].(string) {
		t.Fatal("applying a tag must stamp the contact's last_updated")
	}
	// Tag side, keyed by contact id.
	c.json("POST", fmt.Sprintf("/crm/rest/v1/tags/%d/contacts", tid), map[string]any{"ids": []int64{3, 4, 2, 777}}, 200, &res)
	if res["3"] != "SUCCESS" || res["2"] != "DUPLICATE" || res["777"] != "CONTACT_NOT_FOUND" {
		t.Fatalf("tag-side results %v", res)
	}
	var tagged struct {
		Contacts []map[string]any
		Count    any
	}
	c.json("GET", fmt.Sprintf("/crm/rest/v1/tags/%d/contacts", tid), nil, 200, &tagged)
	if len(tagged.Contacts) != 3 {
		t.Fatalf("tagged contacts %v", tagged.Contacts)
	}
	// Removal from both sides.
	c.json("DELETE", fmt.Sprintf("/crm/rest/v1/contacts/2/tags/%d", tid), nil, 204, nil)
	c.json("DELETE", fmt.Sprintf("/crm/rest/v1/tags/%d/contacts?ids=3", tid), nil, 204, nil)
	c.json("DELETE", fmt.Sprintf("/crm/rest/v1/tags/%d/contacts/4", tid), nil, 204, nil)
	c.json("POST", "/crm/rest/v1/contacts/5/tags", map[string]any{"tagIds": []int64{tid}}, 200, nil)
	c.json("DELETE", fmt.Sprintf("/crm/rest/v1/contacts/5/tags?ids=%d", tid), nil, 204, nil)
	c.json("GET", fmt.Sprintf("/crm/rest/v1/tags/%d/contacts", tid), nil, 200, &tagged)
	if len(tagged.Contacts) != 0 {
		t.Fatalf("after removal: %v", tagged.Contacts)
	}
	var ct struct {
		Tags []map[string]any
	}
	c.json("POST", "/crm/rest/v1/contacts/1/tags", map[string]any{"tagIds": []int64{tid}}, 200, nil)
	c.json("GET", "/crm/rest/v1/contacts/1/tags", nil, 200, &ct)
	found := false
	for _, x := range ct.Tags {
		found = found || (num(x["tag"].(map[string]any)["id"]) == tid && x["tag"].(map[string]any)["category"] == "Imported")
	}
	if !found {
		t.Fatalf("contact tags %v", ct.Tags)
	}
	c.json("GET", "/crm/rest/v1/contacts/999/tags", nil, 404, nil)
	c.json("POST", "/crm/rest/v1/tags/999/contacts", map[string]any{"ids": []int64{1}}, 404, nil)
}
