package sandbox

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

type contactJSON = map[string]any

func TestContactCRUD(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 2})
	c := newClient(t, srv, false)
	const v1 = "/crm/rest/v1/contacts"

	var created contactJSON
	c.json("POST", v1, map[string]any{"given_name": "Ada", "family_name": "Lovelace", "job_title": "Countess",
		"email_addresses": []any{map[string]any{"email": "ada@example.com", "field": "EMAIL1"}}}, 201, &created)
	id := num(created["id"])
	path := fmt.Sprintf("%s/%d", v1, id)

	var got contactJSON
	c.json("GET", path, nil, 200, &got)
	if got["given_name"] != "Ada" || got["job_title"] != nil {
		t.Fatalf("get: %v (job_title is optional and must be absent by default)", got)
	}
	c.json("GET", path+"?optional_properties=job_title", nil, 200, &got)
	if got["job_title"] != "Countess" {
		t.Fatalf("optional job_title: %v", got)
	}

	// PATCH with update_mask applies only the masked properties.
	c.json("PATCH", path+"?update_mask=family_name", map[string]any{"given_name": "Nope", "family_name": "King"}, 200, &got)
	if got["given_name"] != "Ada" || got["family_name"] != "King" {
		t.Fatalf("masked patch: %v", got)
	}
	// PATCH replaces the whole list (the documented profile; TestContactPatchProfiles has both).
	c.json("PATCH", path, map[string]any{"email_addresses": []any{map[string]any{"email": "ada2@example.com", "field": "EMAIL2"}}}, 200, &got)
	if n := len(got["email_addresses"].([]any)); n != 1 {
		t.Fatalf("email replace: %v", got["email_addresses"])
	}
	c.json("PATCH", path, map[string]any{"email_addresses": []any{map[string]any{"email": "ada@example.com", "field": "EMAIL1"}}}, 200, &got)

	// PUT with duplicate_option=Email updates the match; EmailAndName with another name creates.
	var put contactJSON
	c.json("PUT", v1, map[string]any{"duplicate_option": "Email", "given_name": "Augusta",
		"email_addresses": []any{map[string]any{"email": "ADA@example.com", "field": "EMAIL1"}}}, 200, &put)
	if num(put["id"]) != id || put["given_name"] != "Augusta" || put["family_name"] != "King" {
		t.Fatalf("upsert by email: %v", put)
	}
	c.json("PUT", v1, map[string]any{"duplicate_option": "EmailAndName", "given_name": "Other", "family_name": "King",
		"email_addresses": []any{map[string]any{"email": "ada@example.com", "field": "EMAIL1"}}}, 200, &put)
	if num(put["id"]) == id {
		t.Fatalf("EmailAndName with another name must create: %v", put)
	}

	c.json("DELETE", path, nil, 204, nil)
	var msg map[string]string
	c.json("GET", path, nil, 404, &msg)
	if msg["message"] == "" {
		t.Fatalf("404 body %v, want {message}", msg)
	}

	raw := newClient(t, srv, true)
	raw.json("POST", v1, map[string]any{"given_name": "NoWayToReach"}, 400, &msg)
	raw.json("POST", v1, map[string]any{"given_name": 5}, 400, &msg)
	if msg["message"] != "Input could not be converted to a valid request" {
		t.Fatalf("type error body %v", msg)
	}
	raw.json("PATCH", fmt.Sprintf("%s/%d?update_mask=shoe_size", v1, num(put["id"])), map[string]any{}, 400, nil)
	raw.json("POST", v1, map[string]any{"phone_numbers": []any{map[string]any{"number": "1", "field": "PHONE1"}},
		"addresses": []any{map[string]any{"field": "BILLING", "region": "AZ"}}}, 400, nil)
}

var keapTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestTimestampsStrictlyIncrease(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 3}) // the manual clock never moves in this test
	c := newClient(t, srv, false)
	var prev string
	for i := 0; i < 20; i++ {
		var got contactJSON
		c.json("PATCH", fmt.Sprintf("/crm/rest/v1/contacts/%d", i%3+1), map[string]any{"given_name": fmt.Sprint(i)}, 200, &got)
		lu := got["last_updated"].(string)
		if !keapTimeRE.MatchString(lu) {
			t.Fatalf("last_updated %q is not ISO-8601 UTC with milliseconds", lu)
		}
		if lu <= prev {
			t.Fatalf("change %d: last_updated %s not after %s", i, lu, prev)
		}
		prev = lu
	}
}

// listAll follows next URLs from the first page and returns every id seen, in order.
func listAll(t *testing.T, c *client, first string) []int64 {
	t.Helper()
	var ids []int64
	for next := first; next != ""; {
		var page struct {
			Contacts []contactJSON
			Count    any
			Next     string
		}
		c.json("GET", next, nil, 200, &page)
		for _, ct := range page.Contacts {
			ids = append(ids, num(ct["id"]))
		}
		if page.Next != "" {
			if u, err := url.Parse(page.Next); err != nil || !u.IsAbs() {
				t.Fatalf("next %q is not an absolute URL", page.Next)
			}
		}
		next = page.Next
	}
	return ids
}

func TestPaginationUnderConcurrentEdits(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 2500, Seed: 7})
	c := newClient(t, srv, false)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a person editing and adding contacts while we page
		defer wg.Done()
		rnd := rand.New(rand.NewPCG(1, 2))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := srv.EditContact(int64(rnd.IntN(2500)+1), map[string]any{"given_name": fmt.Sprint("edit", i)}); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 0 {
				if _, err := srv.CreateContact(map[string]any{"email_addresses": []any{map[string]any{"email": fmt.Sprintf("n%d@x.io", i), "field": "EMAIL1"}}}); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	ids := listAll(t, c, "/crm/rest/v1/contacts?limit=1000")
	close(stop)
	wg.Wait()
	seen := map[int64]int{}
	for _, id := range ids {
		seen[id]++
	}
	for id := int64(1); id <= 2500; id++ {
		if seen[id] != 1 {
			t.Errorf("contact %d seen %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("contact %d seen %d times", id, n)
		}
	}
}

func TestSinceUntilAndOrder(t *testing.T) {
	t.Parallel()
	srv, clock := start(t, Options{Contacts: 50})
	c := newClient(t, srv, false)
	clock.Advance(time.Hour)
	mark := srv.Now()
	edited := []int64{7, 3, 42}
	for _, id := range edited {
		clock.Advance(time.Second)
		if err := srv.EditContact(id, map[string]any{"family_name": "Edited"}); err != nil {
			t.Fatal(err)
		}
	}
	q := url.Values{"since": {keapTime(mark)}, "order": {"last_updated"}, "order_direction": {"ASCENDING"}}
	ids := listAll(t, c, "/crm/rest/v1/contacts?"+q.Encode())
	if fmt.Sprint(ids) != fmt.Sprint(edited) {
		t.Fatalf("since %s ordered by last_updated: %v, want %v", keapTime(mark), ids, edited)
	}
	// until is exclusive: [since, until) holds only the first edit.
	q.Set("until", keapTime(mark.Add(1500*time.Millisecond)))
	if ids := listAll(t, c, "/crm/rest/v1/contacts?"+q.Encode()); fmt.Sprint(ids) != "[7]" {
		t.Fatalf("since..until: %v, want [7]", ids)
	}
	q = url.Values{"order": {"last_updated"}, "order_direction": {"DESCENDING"}, "limit": {"3"}}
	var page struct{ Contacts []contactJSON }
	c.json("GET", "/crm/rest/v1/contacts?"+q.Encode(), nil, 200, &page)
	if len(page.Contacts) != 3 || num(page.Contacts[0]["id"]) != 42 {
		t.Fatalf("descending last_updated: first %v", page.Contacts)
	}
	newClient(t, srv, true).json("GET", "/crm/rest/v1/contacts?since=yesterday", nil, 400, nil)
}

func TestContactFiltersAndCustomFields(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 30, Seed: 3})
	c := newClient(t, srv, false)
	var target contactJSON
	c.json("GET", "/crm/rest/v1/contacts/5", nil, 200, &target)
	email := target["email_addresses"].([]any)[0].(map[string]any)["email"].(string)
	var page struct {
		Contacts []contactJSON
		Count    any
	}
	c.json("GET", "/crm/rest/v1/contacts?email="+url.QueryEscape(email), nil, 200, &page)
	if len(page.Contacts) != 1 || num(page.Contacts[0]["id"]) != 5 {
		t.Fatalf("email filter: %v", page.Contacts)
	}
	c.json("GET", "/crm/rest/v1/contacts?given_name="+url.QueryEscape(target["given_name"].(string)), nil, 200, &page)
	for _, ct := range page.Contacts {
		if ct["given_name"] != target["given_name"] {
			t.Fatalf("given_name filter returned %v", ct)
		}
	}
	if page.Contacts[0]["custom_fields"] != nil {
		t.Fatal("custom_fields served without optional_properties")
	}

	var model struct {
		CustomFields       []map[string]any `json:"custom_fields"`
		OptionalProperties []string         `json:"optional_properties"`
	}
	c.json("GET", "/crm/rest/v1/contacts/model", nil, 200, &model)
	if len(model.CustomFields) == 0 || len(model.OptionalProperties) == 0 {
		t.Fatalf("model: %+v", model)
	}
	fid := num(model.CustomFields[0]["id"])
	var got contactJSON
	c.json("PATCH", "/crm/rest/v1/contacts/5", map[string]any{"custom_fields": []any{map[string]any{"id": fid, "content": "violet"}}}, 200, &got)
	c.json("GET", "/crm/rest/v1/contacts?limit=10&optional_properties=custom_fields", nil, 200, &page)
	found := false
	for _, cf := range page.Contacts[4]["custom_fields"].([]any) {
		m := cf.(map[string]any)
		found = found || (num(m["id"]) == fid && m["content"] == "violet")
	}
	if !found {
		t.Fatalf("custom field not updated: %v", page.Contacts[4]["custom_fields"])
	}
	newClient(t, srv, true).json("PATCH", "/crm/rest/v1/contacts/5", map[string]any{"custom_fields": []any{map[string]any{"id": 999, "content": "x"}}}, 400, nil)

	var f map[string]any
	c.json("POST", "/crm/rest/v1/contacts/model/customFields", map[string]any{"label": "Shoe size", "field_type": "WholeNumber"}, 201, &f)
	c.json("PATCH", "/crm/rest/v1/contacts/5", map[string]any{"custom_fields": []any{map[string]any{"id": num(f["id"]), "content": 44}}}, 200, nil)
}

// TestContactPatchProfiles: v1 PATCH list and null semantics under each profile switch.
func TestContactPatchProfiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		profile           Profile
		phones            int  // phone numbers left after a PATCH naming only PHONE1
		jobTitleAfterNull bool // job_title still set after {"job_title": null}
	}{
		{"documented", Profile{}, 1, false},
		{"merges lists", Profile{PatchMergesLists: true}, 2, false},
		{"null ignored", Profile{NullIgnored: true}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := start(t, Options{Contacts: 1, Profile: tc.profile})
			c := newClient(t, srv, false)
			var got contactJSON
			c.json("POST", "/crm/rest/v1/contacts", map[string]any{"job_title": "Countess",
				"phone_numbers": []any{map[string]any{"number": "111", "field": "PHONE1"}, map[string]any{"number": "222", "field": "PHONE2"}}}, 201, &got)
			path := fmt.Sprintf("/crm/rest/v1/contacts/%d?optional_properties=job_title", num(got["id"]))
			c.json("PATCH", path, map[string]any{"phone_numbers": []any{map[string]any{"number": "333", "field": "PHONE1"}}}, 200, &got)
			if n := len(got["phone_numbers"].([]any)); n != tc.phones {
				t.Fatalf("phones after PATCH of PHONE1: %v, want %d", got["phone_numbers"], tc.phones)
			}
			got = contactJSON{} // decoding into a used map keeps keys the answer lacks
			c.json("PATCH", path, map[string]any{"job_title": nil}, 200, &got)
			if (got["job_title"] != nil) != tc.jobTitleAfterNull {
				t.Fatalf("job_title after null: %v", got["job_title"])
			}
			got = contactJSON{}
			c.json("PATCH", path, map[string]any{"job_title": ""}, 200, &got)
			if got["job_title"] != nil && got["job_title"] != "" {
				t.Fatalf("an empty string must clear under every profile: %v", got["job_title"])
			}
		})
	}
}

// TestNotFoundBodies: a record that is gone and a route that does not exist answer 404 with
// different bodies, as Keap's application and gateway do.
func TestNotFoundBodies(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 1})
	c := newClient(t, srv, true)
	var record map[string]any
	c.json("GET", "/crm/rest/v1/contacts/999999", nil, 404, &record)
	if record["message"] == nil || record["fault"] != nil {
		t.Fatalf("record 404: %v, want the application's {message}", record)
	}
	for _, p := range []string{"/crm/rest/v9/contacts/1", "/crm/rest/contacts/1", "/crm/rest/v1/contactz/1"} {
		var route map[string]any
		c.json("GET", p, nil, 404, &route)
		if route["fault"] == nil || route["message"] != nil {
			t.Fatalf("route 404 for %s: %v, want the gateway's fault", p, route)
		}
	}
}

// TestCustomFieldRename: a person adds a select field and renames it; GET /v1/contacts/model
// (validated against Keap's document) shows the new label with the options, and the contact's
// value, keyed by the field's id, is unchanged.
func TestCustomFieldRename(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 2, Seed: 3})
	c := newClient(t, srv, false)
	id, err := srv.AddCustomField("Plan tier", "Dropdown", "Gold", "Silver")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EditContact(1, map[string]any{"custom_fields": []any{map[string]any{"id": id, "content": "Gold"}}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.RenameCustomField(id, "Tier; \"quoted\" ✓"); err != nil {
		t.Fatal(err)
	}
	if err := srv.RenameCustomField(999999, "x"); err == nil {
		t.Fatal("renaming a field that does not exist succeeded")
	}
	var model struct {
		CustomFields []customField `json:"custom_fields"`
	}
	c.json("GET", "/crm/rest/v1/contacts/model", nil, 200, &model)
	var got *customField
	for i := range model.CustomFields {
		if model.CustomFields[i].ID == id {
			got = &model.CustomFields[i]
		}
	}
	if got == nil || got.Label != "Tier; \"quoted\" ✓" || got.FieldName != "Plantier"+strconv.FormatInt(id, 10) ||
		len(got.Options) != 2 || got.Options[1].Label != "Silver" {
		t.Fatalf("model after rename: %+v", got)
	}
	var ct contactJSON
	c.json("GET", "/crm/rest/v1/contacts/1?optional_properties=custom_fields", nil, 200, &ct)
	found := false
	for _, cf := range ct["custom_fields"].([]any) {
		m := cf.(map[string]any)
		found = found || (num(m["id"]) == id && m["content"] == "Gold")
	}
	if !found {
		t.Fatalf("value lost by the rename: %v", ct["custom_fields"])
	}
}
