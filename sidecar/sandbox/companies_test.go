package sandbox

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
)

// Keap's v2 company endpoints: a company keeps its phone, notes and custom fields and shows them
// back, an update_mask clears what it names and the body leaves out, the listing pages by
// page_token in the order asked and filters by update time. What Keap refuses (a blank name, a
// custom field of another record type, a page, filter or order it does not offer, a company
// that is not there) is a 400 or 404 in v2's error shape and changes nothing.
func TestCompanyEndpointsAsKeapDoes(t *testing.T) {
	t.Parallel()
	srv, clock := start(t, Options{Contacts: 1, Seed: 12})
	c := newClient(t, srv, false)
	raw := newClient(t, srv, true) // refused requests on purpose
	const v2 = "/crm/rest/v2/companies"
	tier, err := srv.AddCustomFieldTo(recordCompany, "Tier", "Text")
	if err != nil {
		t.Fatal(err)
	}
	taskField, err := srv.AddCustomFieldTo(recordTask, "Outcome", "Text")
	if err != nil {
		t.Fatal(err)
	}

	var acme map[string]any
	c.json("POST", v2+"?fields=custom_fields", map[string]any{"company_name": "Acme", "phone_number": map[string]any{"number": "555-0100", "field": "PHONE1"},
		"notes": "pays late", "custom_fields": []any{map[string]any{"id": strconv.FormatInt(tier, 10), "content": "Gold"}}}, 201, &acme)
	id := acme["id"].(string)
	var got map[string]any
	c.json("GET", v2+"/"+id+"?fields=custom_fields", nil, 200, &got)
	if fmtJSON(t, got["phone_number"]) != `{"field":"PHONE1","number":"555-0100"}` || got["notes"] != "pays late" ||
		fmtJSON(t, got["custom_fields"]) != fmt.Sprintf(`[{"content":"Gold","id":"%d"}]`, tier) {
		t.Errorf("company as read back: %v; want its phone, notes and tier", got)
	}
	got = nil // a fresh map: decoding into the last would keep what the answer leaves out
	c.json("PATCH", v2+"/"+id+"?update_mask=phone_number&update_mask=notes", map[string]any{}, 200, &got)
	if got["phone_number"] != nil || got["notes"] != nil || got["company_name"] != "Acme" {
		t.Errorf("after a masked patch: %v; want the phone and notes cleared, the name kept", got)
	}
	acmeEdited := got["update_time"].(string)

	for _, name := range []string{"Bravo", "Charlie"} {
		clock.Advance(1e9)
		c.json("POST", v2, map[string]any{"company_name": name}, 201, nil)
	}
	var names []string
	path := v2 + "?order_by=create_time%20desc&page_size=1"
	for pages := 0; path != "" && pages < 10; pages++ {
		var page struct {
			Companies []map[string]any `json:"companies"`
			Next      string           `json:"next_page_token"`
		}
		c.json("GET", path, nil, 200, &page)
		for _, co := range page.Companies {
			names = append(names, co["company_name"].(string))
		}
		path = ""
		if page.Next != "" {
			path = v2 + "?order_by=create_time%20desc&page_size=1&page_token=" + page.Next
		}
	}
	if fmt.Sprint(names) != "[Charlie Bravo Acme]" {
		t.Errorf("companies newest first, a page at a time: %v", names)
	}
	var until struct {
		Companies []map[string]any `json:"companies"`
	}
	c.json("GET", v2+"?filter=until_time%3D%3D"+acmeEdited, nil, 200, &until)
	if len(until.Companies) != 1 || until.Companies[0]["company_name"] != "Acme" {
		t.Errorf("companies changed by %s: %v; want Acme alone", acmeEdited, until.Companies)
	}

	before, _ := json.Marshal(srv.Snapshot())
	refused(t, raw, []refusal{
		{"POST", v2, map[string]any{"company_name": "  "}, 400, "company_name is required"},
		{"POST", v2, map[string]any{"company_name": "Delta", "custom_fields": []any{map[string]any{"id": strconv.FormatInt(taskField, 10), "content": "x"}}}, 400, fmt.Sprintf("Invalid custom field id: %d", taskField)},
		{"PATCH", v2 + "/99999", map[string]any{"company_name": "X"}, 404, "Company with ID 99999 not found"},
		{"GET", v2 + "/99999", nil, 404, "Company with ID 99999 not found"},
		{"GET", v2 + "/abc", nil, 400, "Invalid id: abc"},
		{"DELETE", v2 + "/99999", nil, 404, "Company with ID 99999 not found"},
		{"GET", v2 + "?page_size=1001", nil, 400, "Invalid page_size: 1001"},
		{"GET", v2 + "?page_token=not-ours", nil, 400, "Invalid page_token"},
		{"GET", v2 + "?filter=since_time%3D%3Dyesterday", nil, 400, "Invalid filter: since_time==yesterday"},
		{"GET", v2 + "?filter=create_time%3D%3D2026-03-01T00:00:00.000Z", nil, 400, "Invalid filter: create_time==2026-03-01T00:00:00.000Z"},
		{"GET", v2 + "?order_by=company_name", nil, 400, "Invalid order_by: company_name"},
	})
	if after, _ := json.Marshal(srv.Snapshot()); string(after) != string(before) {
		t.Error("a refused request changed the sandbox's state")
	}
}
