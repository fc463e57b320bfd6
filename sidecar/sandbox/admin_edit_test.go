package sandbox

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The test surface a person (and the demo's printed curl) edits Keap through: each edit shows in
// what Keap's API then serves; a record that is not there, an id that is not a number and a body
// that is not JSON are refused with a 4xx and change nothing.
func TestAdminEditsShowInKeapsAPI(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 5, Seed: 4})
	c := newClient(t, srv, false)
	admin := newClient(t, srv, true) // the test surface is not Keap's API: no contract to hold it to

	admin.json("PATCH", "/_sandbox/contacts/1", map[string]any{"given_name": "Edited by curl"}, 200, nil)
	var contact map[string]any
	c.json("GET", "/crm/rest/v1/contacts/1", nil, 200, &contact)
	if contact["given_name"] != "Edited by curl" {
		t.Errorf("after the edit Keap serves given_name %v", contact["given_name"])
	}

	var tag map[string]any
	admin.json("POST", "/_sandbox/tags", map[string]any{"name": "Curl VIP", "description": "made by hand"}, 201, &tag)
	tagID := fmt.Sprint(tag["id"])
	admin.json("POST", "/_sandbox/contacts/1/tags/"+tagID, nil, 204, nil)
	if !hasTag(t, c, tagID) {
		t.Error("the applied tag is not on the contact in Keap's API")
	}
	admin.json("DELETE", "/_sandbox/contacts/1/tags/"+tagID, nil, 204, nil)
	if hasTag(t, c, tagID) {
		t.Error("the removed tag is still on the contact in Keap's API")
	}

	var order map[string]any
	admin.json("POST", "/_sandbox/orders", map[string]any{"contact_id": 2, "order_title": "Over curl", "order_type": "Online",
		"order_items": []any{map[string]any{"product_id": 1, "quantity": 1, "price": "20"}}}, 201, &order)
	orderID := fmt.Sprint(order["id"])
	admin.json("POST", "/_sandbox/orders/"+orderID+"/payments", map[string]any{"amount": 7.5}, 204, nil)
	var paid map[string]any
	c.json("GET", "/crm/rest/v1/orders/"+orderID, nil, 200, &paid)
	if fmt.Sprint(paid["total_paid"]) != "7.5" {
		t.Errorf("after a payment of 7.5 Keap serves total_paid %v", paid["total_paid"])
	}

	before := srv.Snapshot()
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"PATCH", "/_sandbox/contacts/99999", map[string]any{"given_name": "Nobody"}},
		{"PATCH", "/_sandbox/contacts/abc", map[string]any{"given_name": "Nobody"}},
		{"PATCH", "/_sandbox/contacts/1", "{not json"},
		{"DELETE", "/_sandbox/contacts/abc", nil},
		{"POST", "/_sandbox/tags", "[1]"},
		{"POST", "/_sandbox/contacts/1/tags/99999", nil},
		{"POST", "/_sandbox/contacts/abc/tags/1", nil},
		{"POST", "/_sandbox/contacts/1/tags/abc", nil},
		{"POST", "/_sandbox/orders", "{"},
		{"DELETE", "/_sandbox/orders/abc", nil},
		{"DELETE", "/_sandbox/orders/" + orderID, nil}, // paid: Keap refuses too
		{"POST", "/_sandbox/orders/99999/payments", map[string]any{"amount": 1}},
		{"POST", "/_sandbox/orders/abc/payments", map[string]any{"amount": 1}},
		{"POST", "/_sandbox/orders/" + orderID + "/payments", "{"},
		{"PATCH", "/_sandbox/subscriptions/abc", map[string]any{"active": false}},
		{"PATCH", "/_sandbox/subscriptions/1", "{"},
		{"PATCH", "/_sandbox/subscriptions/99999", map[string]any{"active": false}},
	} {
		resp, body := admin.do(tc.method, tc.path, tc.body)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s %s: %d %s, want a 4xx", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	after := srv.Snapshot()
	b, _ := json.Marshal(before)
	a, _ := json.Marshal(after)
	if string(a) != string(b) {
		t.Error("a refused edit changed the sandbox's state")
	}
}

func hasTag(t *testing.T, c *client, tagID string) bool {
	t.Helper()
	var tags struct {
		Tags []struct {
			Tag struct {
				ID json.Number `json:"id"`
			} `json:"tag"`
		} `json:"tags"`
	}
	c.json("GET", "/crm/rest/v1/contacts/1/tags", nil, 200, &tags)
	for _, tg := range tags.Tags {
		if tg.Tag.ID.String() == tagID {
			return true
		}
	}
	return false
}

// What a person cannot do in Keap's web app, the helpers refuse too, naming the record: edit,
// move or delete what is not there, pay an order that is not there, or hand in fields of the
// wrong shape.
func TestPersonHelpersRefuseWhatKeapWould(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 3, Seed: 5})
	const gone = 99999
	wrong := map[string]any{"title": map[string]any{"not": "a string"}, "name": []any{1}, "company_name": 5, "body": 7}
	for name, err := range map[string]error{
		"edit contact":               srv.EditContact(gone, map[string]any{"given_name": "x"}),
		"edit contact, bad fields":   srv.EditContact(1, map[string]any{"given_name": make(chan int)}),
		"edit company":               srv.EditCompany(gone, map[string]any{"company_name": "x"}),
		"edit company, bad fields":   srv.EditCompany(1, wrong),
		"delete company":             srv.DeleteCompany(gone),
		"edit product":               srv.EditProduct(gone, map[string]any{"product_name": "x"}),
		"edit product, bad fields":   srv.EditProduct(1, wrong),
		"delete product":             srv.DeleteProduct(gone),
		"edit task":                  srv.EditTask(gone, map[string]any{"title": "x"}),
		"edit task, bad fields":      srv.EditTask(1, wrong),
		"delete task":                srv.DeleteTask(gone),
		"edit stage":                 srv.EditOpportunityStage(gone, map[string]any{"name": "x"}),
		"edit stage, bad fields":     srv.EditOpportunityStage(1, wrong),
		"delete stage":               srv.DeleteOpportunityStage(gone),
		"edit opportunity":           srv.EditOpportunity(gone, map[string]any{"title": "x"}),
		"edit opportunity, bad":      srv.EditOpportunity(1, wrong),
		"move opportunity":           srv.MoveOpportunity(gone, 1),
		"delete opportunity":         srv.DeleteOpportunity(gone),
		"edit note":                  srv.EditNote(gone, map[string]any{"body": "x"}),
		"edit note, bad fields":      srv.EditNote(1, wrong),
		"delete note":                srv.DeleteNote(gone),
		"pay order":                  srv.PayOrder(gone, 5),
		"subscription active":        srv.SetSubscriptionActive(gone, false),
		"subscription unknown field": srv.SetSubscriptionCustomField(1, gone, "x"),
		"delete order":               srv.DeleteOrder(gone),
		"custom field of notes":      second(srv.AddCustomFieldTo("note", "Mood", "Text")),
		"create company, bad fields": second(srv.CreateCompany(wrong)),
		"create product, bad fields": second(srv.CreateProduct(wrong)),
		"create task, bad fields":    second(srv.CreateTask(wrong)),
		"create stage, bad fields":   second(srv.CreateOpportunityStage(wrong)),
		"create opportunity, bad":    second(srv.CreateOpportunity(wrong)),
		"create order, bad fields":   second(srv.CreateOrder(map[string]any{"contact_id": "three"})),
		"create order, no contact":   second(srv.CreateOrder(map[string]any{"contact_id": gone, "order_title": "x", "order_type": "Offline"})),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(name, "bad") || strings.Contains(name, "field") || strings.Contains(name, "create") {
			continue
		} else if !strings.Contains(err.Error(), fmt.Sprint(gone)) {
			t.Errorf("%s: %v; want the record named", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// A stage renamed in Keap's app is what the stages listing then serves.
func TestStageEditShowsInTheListing(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 3, Seed: 6})
	id, err := srv.CreateOpportunityStage(map[string]any{"name": "Qualified", "order": 9, "probability": 20, "target_number_days": 14})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EditOpportunityStage(id, map[string]any{"name": "Qualified lead"}); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Stages []map[string]any `json:"stages"`
	}
	newClient(t, srv, false).json("GET", "/crm/rest/v2/opportunities/stages", nil, 200, &list)
	for _, s := range list.Stages {
		if fmt.Sprint(s["id"]) == fmt.Sprint(id) {
			if s["name"] != "Qualified lead" {
				t.Errorf("stage %d served as %v", id, s["name"])
			}
			return
		}
	}
	t.Errorf("stage %d not in the listing: %v", id, list.Stages)
}
