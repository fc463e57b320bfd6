package sandbox

import (
	"fmt"
	"testing"
)

func TestOrders(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 20, Seed: 2})
	c := newClient(t, srv, false)
	var o map[string]any
	c.json("POST", "/crm/rest/v1/orders", map[string]any{"contact_id": 3, "order_date": "2026-02-01T10:00:00.000Z",
		"order_title": "Test", "order_type": "Online", "order_items": []any{map[string]any{"product_id": 1, "quantity": 2, "price": "10.50"}}}, 201, &o)
	id := num(o["id"])
	path := fmt.Sprintf("/crm/rest/v1/orders/%d", id)
	c.json("GET", path, nil, 200, &o)
	if o["total"] != "21" && fmt.Sprint(o["total"]) != "21" {
		t.Fatalf("total %v", o["total"])
	}
	var item map[string]any
	c.json("POST", path+"/items", map[string]any{"product_id": 2, "quantity": 1, "price": "4"}, 201, &item)
	c.json("GET", path, nil, 200, &o)
	if fmt.Sprint(o["total_due"]) != "25" || o["status"] != "DRAFT" {
		t.Fatalf("after item: %v %v", o["total_due"], o["status"])
	}
	c.json("DELETE", fmt.Sprintf("%s/items/%d", path, num(item["id"])), nil, 204, nil)
	var list struct {
		Orders []map[string]any
		Count  any
	}
	c.json("GET", "/crm/rest/v1/orders?contact_id=3&paid=false", nil, 200, &list)
	found := false
	for _, x := range list.Orders {
		found = found || num(x["id"]) == id
	}
	if !found {
		t.Fatalf("unpaid orders of contact 3: %v", list.Orders)
	}
	var pay map[string]any
	c.json("POST", path+"/payments", map[string]any{"payment_amount": "21", "payment_method_type": "CASH"}, 201, &pay)
	var pays []map[string]any
	c.json("GET", path+"/payments", nil, 200, &pays)
	c.json("GET", path, nil, 200, &o)
	if len(pays) != 1 || o["status"] != "PAID" {
		t.Fatalf("payments %v status %v", pays, o["status"])
	}
	// Only unpaid orders can be deleted.
	var msg map[string]string
	c.json("DELETE", path, nil, 400, &msg)
	var fresh map[string]any
	c.json("POST", "/crm/rest/v1/orders", map[string]any{"contact_id": 3, "order_date": "2026-02-01T10:00:00.000Z",
		"order_title": "Doomed", "order_type": "Offline", "order_items": []any{map[string]any{"product_id": 1, "quantity": 1}}}, 201, &fresh)
	c.json("DELETE", fmt.Sprintf("/crm/rest/v1/orders/%d", num(fresh["id"])), nil, 204, nil)
	c.json("GET", fmt.Sprintf("/crm/rest/v1/orders/%d", num(fresh["id"])), nil, 404, nil)
	// [V1]: "Dates are ordered by most recent at the top".
	c.json("GET", "/crm/rest/v1/orders?order=update_date&limit=5", nil, 200, &list)
	for i := 1; i < len(list.Orders); i++ {
		if list.Orders[i]["modification_date"].(string) > list.Orders[i-1]["modification_date"].(string) {
			t.Fatal("order=update_date is not newest first")
		}
	}
	newClient(t, srv, true).json("POST", "/crm/rest/v1/orders", map[string]any{"contact_id": 3, "order_date": "2026-02-01T10:00:00.000Z",
		"order_title": "x", "order_type": "Online", "order_items": []any{map[string]any{"product_id": 4242, "quantity": 1}}}, 400, nil)
}

// A person enters and deletes orders in the web app: the Go helpers and the test surface.
func TestOrderHelpers(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 20, Seed: 2})
	id, err := srv.CreateOrder(map[string]any{"contact_id": 3, "order_title": "By hand", "order_type": "Offline",
		"order_items": []any{map[string]any{"product_id": 1, "quantity": 2, "price": "5"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, false)
	var o map[string]any
	c.json("GET", fmt.Sprintf("/crm/rest/v1/orders/%d", id), nil, 200, &o)
	if o["title"] != "By hand" || fmt.Sprint(o["total"]) != "10" || o["order_date"] == "" {
		t.Fatalf("entered order: %v", o)
	}
	if _, err := srv.CreateOrder(map[string]any{"contact_id": 99999, "order_title": "Nobody", "order_type": "Offline"}); err == nil {
		t.Fatal("an order for an unknown contact was entered")
	}
	if err := srv.PayOrder(id, 10); err != nil {
		t.Fatal(err)
	}
	if err := srv.DeleteOrder(id); err == nil {
		t.Fatal("a paid order was deleted")
	}
	var made map[string]any
	c.json("POST", "/_sandbox/orders", map[string]any{"contact_id": 3, "order_title": "Over curl", "order_type": "Online",
		"order_items": []any{map[string]any{"product_id": 1, "quantity": 1}}}, 201, &made)
	c.json("DELETE", fmt.Sprintf("/_sandbox/orders/%d", num(made["id"])), nil, 204, nil)
	c.json("GET", fmt.Sprintf("/crm/rest/v1/orders/%d", num(made["id"])), nil, 404, nil)
	c.json("POST", "/_sandbox/orders", map[string]any{"contact_id": 99999, "order_type": "Online"}, 400, nil)
}

func TestSubscriptions(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 40, Seed: 5})
	c := newClient(t, srv, false)
	var plan int64
	for _, p := range srv.Snapshot().Products {
		if len(p.Plans) > 0 {
			plan = p.Plans[0].ID
			break
		}
	}
	var sub map[string]any
	c.json("POST", "/crm/rest/v1/subscriptions", map[string]any{"contact_id": 4, "subscription_plan_id": plan, "quantity": 2}, 201, &sub)
	id := num(sub["id"])
	var list struct {
		Subscriptions []map[string]any
		Count         any
	}
	c.json("GET", "/crm/rest/v1/subscriptions?contact_id=4", nil, 200, &list)
	if len(list.Subscriptions) == 0 || num(list.Subscriptions[len(list.Subscriptions)-1]["id"]) != id {
		t.Fatalf("subscriptions of contact 4: %v", list.Subscriptions)
	}
	// v2 is the only way to see when a subscription changed.
	var v2 map[string]any
	c.json("GET", fmt.Sprintf("/crm/rest/v2/subscriptions/%d", id), nil, 200, &v2)
	before := v2["modification_time"].(string)
	if err := srv.SetSubscriptionActive(id, false); err != nil {
		t.Fatal(err)
	}
	c.json("GET", fmt.Sprintf("/crm/rest/v2/subscriptions/%d", id), nil, 200, &v2)
	if v2["active"] != false || v2["modification_time"].(string) <= before {
		t.Fatalf("v2 after edit: %v", v2)
	}
	// v2 paging with a token, ordered by modification_time.
	seen := map[string]bool{}
	for tok := ""; ; {
		var page struct {
			Subscriptions []map[string]any
			NextPageToken string `json:"next_page_token"`
		}
		c.json("GET", "/crm/rest/v2/subscriptions?page_size=2&order_by=modification_time%20asc&page_token="+tok, nil, 200, &page)
		for _, s := range page.Subscriptions {
			seen[s["id"].(string)] = true
		}
		if tok = page.NextPageToken; tok == "" {
			break
		}
	}
	if len(seen) != len(srv.Snapshot().Subscriptions) {
		t.Fatalf("v2 paging saw %d of %d", len(seen), len(srv.Snapshot().Subscriptions))
	}
	c.json("GET", "/crm/rest/v2/subscriptions/99999", nil, 404, nil)
}
