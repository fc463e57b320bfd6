package sandbox

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Keap's order and payment endpoints: v2's payment listing filters by amount (each operator),
// contact and id and orders by amount or contact; an order's custom fields, set and cleared by a
// person, show in v2's order listing. What Keap refuses (an id, page, order, filter, date or
// amount that does not parse, an order, item or product that is not there, a v2 order update of
// more than its custom fields) is a 400 or 404 in the version's error shape and changes nothing.
func TestOrderAndPaymentEndpointsAsKeapDoes(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 3, Seed: 14})
	c := newClient(t, srv, false)
	raw := newClient(t, srv, true) // refused requests on purpose
	const v1, v2 = "/crm/rest/v1/orders", "/crm/rest/v2"
	order := func(contact int) string {
		var o map[string]any
		c.json("POST", v1, map[string]any{"contact_id": contact, "order_date": "2026-02-01T10:00:00.000Z", "order_title": "T", "order_type": "Online",
			"order_items": []any{map[string]any{"product_id": 1, "quantity": 1, "price": "100"}}}, 201, &o)
		return fmt.Sprint(num(o["id"]))
	}
	a, b := order(2), order(1) // ids and contacts in opposite orders
	for _, p := range []struct{ order, amount string }{{a, "5"}, {a, "3"}, {b, "20"}} {
		c.json("POST", v1+"/"+p.order+"/payments", map[string]any{"payment_amount": p.amount, "payment_method_type": "CASH"}, 201, nil)
	}
	amounts := func(query string) string {
		var list struct {
			Payments []map[string]any `json:"payments"`
		}
		c.json("GET", v2+"/sales/payments?"+query, nil, 200, &list)
		var out []string
		for _, p := range list.Payments {
			out = append(out, fmt.Sprint(p["amount"]))
		}
		return fmt.Sprint(out)
	}
	for query, want := range map[string]string{
		"filter=amount%3D%3D3":                            "[3]",
		"filter=amount!%3D3":                              "[5 20]",
		"filter=amount%3E5":                               "[20]",
		"filter=amount%3C5":                               "[3]",
		"filter=amount%3C%3D5":                            "[5 3]",
		"filter=contact_id%3D%3D2":                        "[5 3]",
		"filter=ids%3D%3D1,3":                             "[5 20]",
		"filter=id%3E%3D2":                                "[3 20]",
		"order_by=amount%20desc":                          "[20 5 3]",
		"order_by=contact_id":                             "[20 5 3]",
		"order_by=contact_id%20desc":                      "[3 5 20]", // ties by id, descending too
		"filter=until_time%3D%3D2020-01-01T00:00:00.000Z": "[]",
	} {
		if got := amounts(query); got != want {
			t.Errorf("payments, %s: %s, want %s", query, got, want)
		}
	}

	field, err := srv.AddCustomFieldTo(recordOrder, "Rush", "Text")
	if err != nil {
		t.Fatal(err)
	}
	var aID int64
	fmt.Sscan(a, &aID)
	customOf := func() string {
		var list struct {
			Orders []map[string]any `json:"orders"`
		}
		c.json("GET", v2+"/orders?filter=ids%3D%3D"+a, nil, 200, &list)
		if len(list.Orders) != 1 {
			t.Fatalf("order %s by id: %v", a, list.Orders)
		}
		return fmtJSON(t, list.Orders[0]["custom_fields"])
	}
	if err := srv.SetOrderCustomField(aID, field, "yes"); err != nil {
		t.Fatal(err)
	}
	if got, want := customOf(), fmt.Sprintf(`[{"content":"yes","id":"%d"}]`, field); got != want {
		t.Errorf("order %s's custom fields after a person set one: %s, want %s", a, got, want)
	}
	if err := srv.SetOrderCustomField(aID, field, nil); err != nil {
		t.Fatal(err)
	}
	if got := customOf(); got != "[]" {
		t.Errorf("order %s's custom fields after a person cleared one: %s", a, got)
	}
	if err := srv.SetOrderCustomField(99999, field, "x"); err == nil || !strings.Contains(err.Error(), "order 99999") {
		t.Errorf("a person setting a custom field of an order that is not there: %v", err)
	}

	before, _ := json.Marshal(srv.Snapshot())
	refused(t, raw, []refusal{
		{"GET", v1 + "?limit=-1", nil, 400, "Invalid limit: -1"},
		{"GET", v1 + "?order=total", nil, 400, "Invalid order: total"},
		{"GET", v1 + "?contact_id=x", nil, 400, "Invalid contact_id: x"},
		{"GET", v1 + "?paid=maybe", nil, 400, "Invalid paid: maybe"},
		{"GET", v1 + "?since=yesterday", nil, 400, "Invalid date: yesterday"},
		{"GET", v1 + "?until=tomorrow", nil, 400, "Invalid date: tomorrow"},
		{"GET", v1 + "/abc", nil, 400, "Invalid id: abc"},
		{"POST", v1, "{", 400, "Input could not be converted"},
		{"POST", v1, "", 400, "Input could not be converted"}, // no body: past the document's check, the decoder's
		{"DELETE", v1 + "/abc", nil, 400, "Invalid id: abc"},
		{"POST", v1 + "/abc/items", map[string]any{"product_id": 1, "quantity": 1}, 400, "Invalid id: abc"},
		{"POST", v1 + "/" + a + "/items", "{", 400, "Input could not be converted"},
		{"POST", v1 + "/" + a + "/items", "", 400, "Input could not be converted"},
		{"POST", v1 + "/" + a + "/items", map[string]any{"product_id": 99999, "quantity": 1}, 400, "Product with ID 99999 not found"},
		{"POST", v1 + "/99999/items", map[string]any{"product_id": 1, "quantity": 1}, 404, "Order with ID 99999 not found"},
		{"DELETE", v1 + "/abc/items/1", nil, 400, "Invalid id: abc"},
		{"DELETE", v1 + "/" + a + "/items/abc", nil, 400, "Invalid itemId: abc"},
		{"DELETE", v1 + "/" + a + "/items/99999", nil, 404, "Order item with ID 99999 not found"},
		{"GET", v1 + "/abc/payments", nil, 400, "Invalid id: abc"},
		{"GET", v1 + "/99999/payments", nil, 404, "Order with ID 99999 not found"},
		{"POST", v1 + "/abc/payments", map[string]any{"payment_amount": "1", "payment_method_type": "CASH"}, 400, "Invalid id: abc"},
		{"POST", v1 + "/" + a + "/payments", "{", 400, "Input could not be converted"},
		{"POST", v1 + "/" + a + "/payments", "", 400, "Input could not be converted"},
		{"POST", v1 + "/" + a + "/payments", map[string]any{"payment_amount": "lots", "payment_method_type": "CASH"}, 400, "Invalid payment_amount: lots"},
		{"POST", v1 + "/" + a + "/payments", map[string]any{"payment_amount": "1", "payment_method_type": "CASH", "date": "Tuesday"}, 400, "Input could not be converted"}, // not a date-time to the document
		{"GET", v2 + "/sales/payments?page_size=x", nil, 400, "Invalid page_size: x"},
		{"GET", v2 + "/sales/payments?filter=amount%3E%3Dlots", nil, 400, "Invalid filter: amount>=lots"},
		{"GET", v2 + "/sales/payments?filter=since_time%3D%3Dyesterday", nil, 400, "Invalid filter: since_time==yesterday"},
		{"GET", v2 + "/sales/payments?filter=order_ids%3D%3D1,x", nil, 400, "Invalid filter: order_ids==1,x"},
		{"GET", v2 + "/sales/payments?order_by=payment_method", nil, 400, "Invalid order_by: payment_method"},
		{"PATCH", v2 + "/orders/abc?update_mask=custom_fields", map[string]any{"custom_fields": []any{}}, 400, "Invalid id: abc"},
		{"PATCH", v2 + "/orders/99999?update_mask=custom_fields", map[string]any{"custom_fields": []any{}}, 404, "Order with ID 99999 not found"},
		{"PATCH", v2 + "/orders/" + a + "?update_mask=order_title", map[string]any{"order_title": "x"}, 400, "The sandbox updates only custom_fields here: order_title"},
		{"PATCH", v2 + "/orders/" + a + "?update_mask=custom_fields", map[string]any{"custom_fields": []any{map[string]any{"id": "99999", "content": "x"}}}, 400, "Invalid custom field id: 99999"},
		{"GET", v2 + "/orders?page_size=x", nil, 400, "Invalid page_size: x"},
	})
	if after, _ := json.Marshal(srv.Snapshot()); string(after) != string(before) {
		t.Error("a refused request changed the sandbox's state")
	}
}
