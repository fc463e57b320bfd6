package ingest_test

import (
	"context"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

// The catalogue arrives by backfill and hooks; order items name products here; a lost hook is
// caught by reconcile (the whole catalogue is listed: v2 cannot filter products by time) and a
// lost delete by the delete sweep.
func TestProductsArrive(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 12) // enough contacts for orders, whose items name products
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if got, want := w.count(t, `select count(*) from keap.products where name is not null and price_cents > 0`), len(w.sb.Snapshot().Products); got != want || got == 0 {
		t.Fatalf("products: %d here, %d in Keap", got, want)
	}
	if n := w.count(t, `select count(*) from keap.order_items i left join keap.products p on p.account_id = i.account_id and p.keap_id = i.product_id
	    where i.product_id is not null and p.id is null`); n != 0 {
		t.Errorf("%d order items name a product that is not here", n)
	}
	if n := w.count(t, `select count(*) from keap.order_items where product_id is not null and product_account_id is null`); n != 0 {
		t.Errorf("%d order items are not linked to their product, which is here", n)
	}
	if n := w.count(t, `select count(*) from keap.order_items i join keap.products p
	    on p.account_id = i.product_account_id and p.keap_id = i.product_id`); n == 0 {
		t.Errorf("no order item refers to its product (%d items)", w.count(t, `select count(*) from keap.order_items`))
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	widget, err := w.sb.CreateProduct(map[string]any{"name": "Widget", "sku": "W-1", "price": 1999, "short_description": "w"})
	if err != nil {
		t.Fatal(err)
	}
	doomed, err := w.sb.CreateProduct(map[string]any{"name": "Gadget", "price": 500, "short_description": "g"})
	if err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if err := w.sb.EditProduct(widget, map[string]any{"description": "A fine widget", "active": false}); err != nil {
		t.Fatal(err)
	}
	if err := w.sb.DeleteProduct(doomed); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.products where keap_id = $1 and name = 'Widget' and sku = 'W-1'
	    and price_cents = 1999 and description = 'A fine widget' and not active`, widget); got != 1 {
		t.Error("the new product and its edit did not arrive")
	}
	if got := w.count(t, `select count(*) from keap.products where keap_id = $1`, doomed); got != 0 {
		t.Error("the deleted product is still here")
	}

	// Hooks lost.
	for _, h := range w.sb.Hooks() {
		if err := w.api.DeleteHook(ctx, h.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.sb.EditProduct(widget, map[string]any{"name": "Widget Pro"}); err != nil {
		t.Fatal(err)
	}
	gone, err := w.sb.CreateProduct(map[string]any{"name": "Gizmo", "price": 100, "short_description": "z"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Reconcile(ctx, w.account, []string{"product"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.products where keap_id = $1 and name = 'Widget Pro'`, widget); got != 1 {
		t.Error("reconcile did not catch the edit whose hook was lost")
	}
	if err := w.sb.DeleteProduct(gone); err != nil {
		t.Fatal(err)
	}
	w.sweptAway(t, "product", "products", gone)
}
