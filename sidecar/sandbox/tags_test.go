package sandbox

import (
	"fmt"
	"testing"
	"time"
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

// v2 lists tags by id (filter tag_ids, which v1 lacks), each with its times and its category
// named by id alone, and lists the categories whose names v1 nests in each tag: a tag read
// through v2 carries what its v1 GET does.
func TestTagsV2ByIDs(t *testing.T) {
	t.Parallel()
	srv, clock := start(t, Options{Contacts: 3, Seed: 8})
	c := newClient(t, srv, false)
	var cat, gold, plain, v1gold map[string]any
	c.json("POST", "/crm/rest/v1/tags/categories", map[string]any{"name": "Imported", "description": "from CSV"}, 200, &cat)
	c.json("POST", "/crm/rest/v1/tags", map[string]any{"name": "Gold", "description": "best", "category": map[string]any{"id": num(cat["id"])}}, 200, &gold)
	clock.Advance(time.Second)
	c.json("POST", "/crm/rest/v1/tags", map[string]any{"name": "Plain"}, 200, &plain)
	c.json("GET", fmt.Sprintf("/crm/rest/v1/tags/%d", num(gold["id"])), nil, 200, &v1gold)

	var list struct {
		Tags          []map[string]any `json:"tags"`
		NextPageToken string           `json:"next_page_token"`
	}
	c.json("GET", fmt.Sprintf("/crm/rest/v2/tags?filter=tag_ids%%3D%%3D%d,%d,99999", num(plain["id"]), num(gold["id"])), nil, 200, &list)
	if len(list.Tags) != 2 || list.NextPageToken != "" {
		t.Fatalf("two of three ids are tags: %v", list)
	}
	g := list.Tags[0]
	if g["id"] != fmt.Sprint(num(gold["id"])) || g["name"] != "Gold" || g["description"] != "best" ||
		g["category"].(map[string]any)["id"] != fmt.Sprint(num(cat["id"])) || g["create_time"] == nil || g["update_time"] == nil {
		t.Errorf("v2 tag %v, v1 tag %v", g, v1gold)
	}
	if _, ok := list.Tags[1]["category"]; ok {
		t.Errorf("a tag without a category has one in v2: %v", list.Tags[1])
	}

	c.json("GET", "/crm/rest/v2/tags?order_by=update_time%20desc&page_size=1", nil, 200, &list)
	if len(list.Tags) != 1 || list.Tags[0]["name"] != "Plain" || list.NextPageToken == "" {
		t.Errorf("newest first, a page of one: %v", list)
	}

	var cats struct {
		Categories []map[string]any `json:"tag_categories"`
	}
	c.json("GET", "/crm/rest/v2/tags/categories", nil, 200, &cats)
	want := v1gold["category"].(map[string]any)
	if last := cats.Categories[len(cats.Categories)-1]; last["id"] != fmt.Sprint(num(want["id"])) ||
		last["name"] != want["name"] || last["description"] != want["description"] {
		t.Errorf("categories %v: the last is not v1's %v", cats.Categories, want)
	}

	refused(t, newClient(t, srv, true), []refusal{
		{"GET", "/crm/rest/v2/tags?filter=name%3D%3DGold", nil, 400, "Invalid filter"},
		{"GET", "/crm/rest/v2/tags?filter=tag_ids%3D%3Dx", nil, 400, "Invalid filter"},
		{"GET", "/crm/rest/v2/tags?order_by=id", nil, 400, "Invalid order_by"},
		{"GET", "/crm/rest/v2/tags?page_size=1001", nil, 400, "Invalid page_size"},
		{"GET", "/crm/rest/v2/tags/categories?order_by=name", nil, 400, "id order only"},
	})
}
