package sandbox

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"testing"
)

// Many orders' payments in one listing: order_ids names the orders, pages follow page_token,
// and what the listing holds is what each order's v1 payments hold.
func TestListPaymentsV2(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 3, Seed: 5})
	c := newClient(t, srv, false)
	const v1 = "/crm/rest/v1"
	var orders []int64
	for i := range 3 {
		var o map[string]any
		c.json("POST", v1+"/orders", map[string]any{"contact_id": 1, "order_date": "2026-02-01T10:00:00.000Z", "order_title": fmt.Sprint("O", i),
			"order_type": "Online", "order_items": []any{map[string]any{"product_id": 1, "quantity": 1, "price": "10"}}}, 201, &o)
		id := num(o["id"])
		orders = append(orders, id)
		for range i + 1 {
			c.json("POST", fmt.Sprintf("%s/orders/%d/payments", v1, id), map[string]any{"payment_amount": "1.00", "payment_method_type": "CASH"}, 201, nil)
		}
	}
	// Orders 0 and 2: 1 + 3 payments, in pages of one.
	want := map[string]bool{}
	for _, id := range []int64{orders[0], orders[2]} {
		var ps []map[string]any
		c.json("GET", fmt.Sprintf("%s/orders/%d/payments", v1, id), nil, 200, &ps)
		for _, p := range ps {
			want[fmt.Sprint(num(p["id"]), "/", id, "/", p["amount"])] = true
		}
	}
	got := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the page tokens do not end")
		}
		var page struct {
			Payments []struct {
				ID       string   `json:"id"`
				Amount   float64  `json:"amount"`
				OrderIDs []string `json:"order_ids"`
			} `json:"payments"`
			Next string `json:"next_page_token"`
		}
		c.json("GET", fmt.Sprintf("/crm/rest/v2/sales/payments?page_size=1&filter=order_ids%%3D%%3D%d,%d&page_token=%s", orders[0], orders[2], token), nil, 200, &page)
		for _, p := range page.Payments {
			if len(p.OrderIDs) != 1 {
				t.Fatalf("payment %s pays %v", p.ID, p.OrderIDs)
			}
			got[fmt.Sprint(p.ID, "/", p.OrderIDs[0], "/", p.Amount)] = true
		}
		if token = page.Next; token == "" {
			break
		}
	}
	if len(got) != 4 || len(want) != 4 {
		t.Errorf("listed %v, v1 has %v", got, want)
	}
	for k := range want {
		if !got[k] {
			t.Errorf("v1's payment %s is not listed (listed %v)", k, got)
		}
	}
	// Comparators and a refusal.
	var page struct {
		Payments []map[string]any `json:"payments"`
	}
	c.json("GET", fmt.Sprintf("/crm/rest/v2/sales/payments?order_by=id%%20desc&filter=order_id%%3D%%3D%d%%3Bamount%%3E%%3D1", orders[2]), nil, 200, &page)
	var ids []int64
	for _, p := range page.Payments {
		id, err := strconv.ParseInt(p["id"].(string), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if len(ids) != 3 || !slices.IsSortedFunc(ids, func(a, b int64) int { return cmp.Compare(b, a) }) {
		t.Errorf("order_id with amount>=1, newest id first: %v", ids)
	}
	c.json("GET", "/crm/rest/v2/sales/payments?filter=order_ids%3Cx", nil, 400, nil)
	c.json("GET", "/crm/rest/v2/sales/payments?filter=merchant_account_id%3D%3D1", nil, 400, nil)
}
