package sandbox

import (
	"bytes"
	"fmt"
	"math"
	"net/http/httptest"
	"testing"
)

// An amount the sandbox cannot render used to be accepted and then answered as 200 with an empty
// body (the JSON encoder refused NaN and infinities after the status was sent); a client took
// that for an order with id 0. Such amounts are a 400 with Keap's error body, and every order
// the sandbox holds renders as JSON.
func TestUnrenderableAmountsAreRefusedWithKeapsError(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 3, Seed: 4})
	c := newClient(t, srv, false)
	for _, price := range []string{"1e308", "-1e308", "NaN", "Inf", "1e400"} {
		var msg map[string]string
		c.json("POST", "/crm/rest/v1/orders", map[string]any{"contact_id": 1, "order_date": "2026-02-01T10:00:00.000Z",
			"order_title": "Hostile", "order_type": "Online", "order_items": []any{map[string]any{"product_id": 1, "quantity": 2, "price": price}}}, 400, &msg)
		if msg["message"] != "Invalid price: "+price {
			t.Errorf("price %s: body %v", price, msg)
		}
	}
	var o map[string]any
	c.json("POST", "/crm/rest/v1/orders", map[string]any{"contact_id": 1, "order_date": "2026-02-01T10:00:00.000Z",
		"order_title": "Fine", "order_type": "Online", "order_items": []any{map[string]any{"product_id": 1, "quantity": 1}}}, 201, &o)
	path := fmt.Sprintf("/crm/rest/v1/orders/%d/payments", num(o["id"]))
	for _, amount := range []string{"NaN", "1e308"} {
		var msg map[string]string
		c.json("POST", path, map[string]any{"payment_amount": amount, "payment_method_type": "CASH"}, 400, &msg)
		if msg["message"] == "" {
			t.Errorf("payment %s: no Keap message", amount)
		}
	}
	for _, o := range srv.Snapshot().Orders {
		if o["id"] == nil {
			t.Errorf("an order without an id: %v", o)
		}
	}
}

// writeJSON never sends a 2xx it cannot fill: a value the encoder refuses is a 500 with a body.
func TestWriteJSONNeverSendsAnEmptySuccess(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	writeJSON(rec, 200, map[string]any{"total": math.NaN()})
	if rec.Code != 500 || !bytes.Contains(rec.Body.Bytes(), []byte(`"message"`)) {
		t.Fatalf("status %d body %q", rec.Code, rec.Body.String())
	}
}
