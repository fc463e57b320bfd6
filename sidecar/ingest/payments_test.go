package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// Hooked payments are stored the same whichever way they are read: one order's at a time
// (GET /v1/orders/{id}/payments, a few hooks) or many orders' in one listing
// (GET /v2/sales/payments?filter=order_ids==…, a batch naming many orders). Each order's stored
// payments are exactly what the per-order read gives.
func TestPaymentsSameEitherWay(t *testing.T) {
	w := newWorld(t, 40)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, []string{"order"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	var orders []int64
	if err := w.db.QueryRow(ctx, `select array_agg(keap_id order by keap_id) from keap.orders where account_id = $1`, w.account).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if len(orders) < 8 {
		t.Fatalf("%d orders in the sandbox, want 8 or more", len(orders))
	}
	half := len(orders) / 2
	for _, run := range []struct {
		name      string
		threshold int
		orders    []int64
		listed    bool // read by the listing, not one order at a time
	}{
		{"per order", 1 << 20, orders[:half], false},
		{"listed", 1, orders[half:], true},
	} {
		w.worker.ListThreshold = run.threshold
		for i, id := range run.orders {
			if err := w.sb.PayOrder(id, 0.01*float64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		w.sb.ClearRequests()
		w.settle(t)
		listed, perOrder := paymentCalls(w.sb.Requests())
		if (listed > 0) != run.listed || (perOrder > 0) == run.listed {
			t.Errorf("%s: %d per-order reads of payments, %d listings", run.name, perOrder, listed)
		}
		for _, id := range run.orders {
			w.storesPaymentsAsKeap(t, run.name, id)
		}
	}
}

// storesPaymentsAsKeap checks that order id stores exactly the payments Keap's per-order read
// gives, in its Keap object and in keap.order_payments.
func (w *world) storesPaymentsAsKeap(t *testing.T, name string, id int64) {
	t.Helper()
	ctx := context.Background()
	ps, err := w.api.OrderPayments(ctx, keap.ID(id))
	if err != nil {
		t.Fatal(err)
	}
	raws := make([]json.RawMessage, len(ps))
	for i, p := range ps {
		raws[i] = p.Raw
	}
	list, err := json.Marshal(raws)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.orders o where o.account_id = $1 and o.keap_id = $2
	    and o.keap_object -> 'payments' = $3::jsonb
	    and (select coalesce(jsonb_agg(p.keap_object order by p.keap_id), '[]') from keap.order_payments p where p.order_id = o.id)
	        = (select coalesce(jsonb_agg(x order by (x ->> 'id')::bigint), '[]') from jsonb_array_elements($3::jsonb) x)`,
		w.account, id, string(list)); got != 1 {
		var stored string
		_ = w.db.QueryRow(ctx, `select coalesce(keap_object ->> 'payments', 'none') from keap.orders where account_id = $1 and keap_id = $2`, w.account, id).Scan(&stored)
		t.Errorf("%s: order %d stores payments %s, Keap's per-order read is %s", name, id, stored, list)
	}
}

// A payments listing Keap answers with an item that does not decode spoils the whole listing;
// the worker then reads each order's payments on its own, and every order stores what Keap's
// per-order read gives. Before the fallback, the group failed and waited for retries that
// met the same listing.
func TestPaymentsListingUnusableFallsBackPerOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 40)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, []string{"order"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	var orders []int64
	if err := w.db.QueryRow(ctx, `select array_agg(keap_id order by keap_id) from keap.orders where account_id = $1`, w.account).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if len(orders) < 4 {
		t.Fatalf("%d orders in the sandbox, want 4 or more", len(orders))
	}
	api, listings := w.paymentsListingSpoiled(t, http.StatusOK, `{"payments": [{"id": "1", "order_ids": {"not": "a list"}}], "next_page_token": ""}`)
	worker := &ingest.Worker{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return api, nil }, ListThreshold: 1}
	for i, id := range orders {
		if err := w.sb.PayOrder(id, 0.01*float64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	w.sb.FlushHooks()
	if err := w.sb.WaitHooksIdle(ctx); err != nil {
		t.Fatal(err)
	}
	w.sb.ClearRequests()
	for i := 0; ; i++ {
		did, err := worker.RunOnce(ctx)
		if err != nil {
			t.Fatalf("the worker stopped on the unusable listing: %v", err)
		}
		if !did {
			break
		}
		if i == 100 {
			t.Fatal("inbox never drained")
		}
	}
	_, perOrder := paymentCalls(w.sb.Requests())
	if listings.Load() == 0 || perOrder == 0 {
		t.Fatalf("%d listings and %d per-order reads: want the listing tried, then each order read", listings.Load(), perOrder)
	}
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where account_id = $1 and processed_at is null`, w.account); got != 0 {
		t.Errorf("%d deliveries left waiting", got)
	}
	for _, id := range orders {
		w.storesPaymentsAsKeap(t, "after an unusable listing", id)
	}
}

// A backfill and a reconcile read the payments of the orders they store as a batch of hooks
// does: 500 orders a call through GET /v2/sales/payments, not one GET /v1/orders/{id}/payments
// per paid order. 1,200 paid orders cost 3 listings (a page of 1,000 orders is two, the rest
// one) where they cost 1,200 calls; what is stored is the same as when each order's payments
// are read on their own, which is what the sweep falls back to when Keap's listing is unusable.
func TestSweepReadsPaymentsListed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 20)
	ctx := context.Background()
	const created = 1200
	var once []int64 // orders paid once; the others twice
	for i := range created {
		id, err := w.sb.CreateOrder(map[string]any{"contact_id": 1 + i%20, "order_title": fmt.Sprint("Paid ", i), "order_type": "Online",
			"order_items": []any{map[string]any{"product_id": 1 + i%2, "quantity": 1 + i%3}}})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			once = append(once, id)
		}
		for n := range 1 + i%2 {
			if err := w.sb.PayOrder(id, 0.5+float64(n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	api, spoiled := w.paymentsListingSpoiled(t, http.StatusBadRequest, `{"message": "Invalid filter: order_ids"}`)
	// The production page size: a page of 1,000 orders is what one listing's 500 is measured against.
	listed := &ingest.Sweeper{DB: w.db, API: w.sweeper.API, Log: w.sweeper.Log}
	perOrder := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return api, nil }, Log: w.sweeper.Log}

	paid, orders := paidOrders(w.sb)
	if paid < created {
		t.Fatalf("%d paid orders in the sandbox, want %d or more", paid, created)
	}
	reset := func() {
		t.Helper()
		if _, err := w.db.Exec(ctx, `truncate keap.orders cascade; delete from keapsync.sync_state where object_type = 'order';
		    delete from keapsync.sync_cursors where object_type = 'order'`); err != nil {
			t.Fatal(err)
		}
	}
	sweep := func(name string, s *ingest.Sweeper, run func(*ingest.Sweeper) error) (listings, reads int, stored string) {
		t.Helper()
		w.sb.ClearRequests()
		spoiled.Store(0)
		start := time.Now()
		if err := run(s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		listings, reads = paymentCalls(w.sb.Requests())
		listings += int(spoiled.Load())
		t.Logf("%s: %d payment listings, %d per-order payment reads (%s)", name, listings, reads, time.Since(start).Round(time.Millisecond))
		return listings, reads, w.storedPayments(t)
	}
	backfill := func(s *ingest.Sweeper) error { return s.Backfill(ctx, w.account, []string{"order"}) }
	reconcile := func(s *ingest.Sweeper) error { return s.Reconcile(ctx, w.account, []string{"order"}) }
	// One listing per 500 paid orders of a page of 1,000 orders (no order here has more than two
	// payments, so 500 orders' fill at most one page of the listing): at most one more per page
	// than for all of them at once.
	most := func(paid int) int { return (paid+499)/500 + (orders+999)/1000 - 1 }

	// A listing Keap refuses: each paid order's payments are read on their own, as before.
	listings, reads, each := sweep("backfill, listing refused", perOrder, backfill)
	if listings == 0 || reads != paid {
		t.Errorf("backfill with the listing refused: %d listings and %d per-order reads; want it tried, then %d reads", listings, reads, paid)
	}
	reset()
	listings, reads, got := sweep("backfill", listed, backfill)
	if listings == 0 || listings > most(paid) || reads != 0 {
		t.Errorf("backfill of %d paid orders: %d payment listings and %d per-order reads, want at most %d listings and no per-order read",
			paid, listings, reads, most(paid))
	}
	if got != each {
		t.Errorf("a backfill stores other payments listed than read order by order")
	}
	if n := w.count(t, `select count(*) from keap.order_payments p join keap.orders o on o.id = p.order_id where o.account_id = $1`, w.account); n < created*3/2 {
		t.Errorf("%d payments stored, want %d or more", n, created*3/2)
	}

	// Every other order paid once is paid again, no hook heard: a reconcile reads their payments,
	// listed. (Fewer than all: a changed order is applied record by record, the sweep's slow part.)
	again := 0
	for i, id := range once {
		if i%2 == 0 {
			if err := w.sb.PayOrder(id, 0.25); err != nil {
				t.Fatal(err)
			}
			again++
		}
	}
	listings, reads, got = sweep("reconcile", listed, reconcile)
	if listings == 0 || listings > most(again) || reads != 0 {
		t.Errorf("reconcile of %d newly paid orders: %d payment listings and %d per-order reads, want at most %d listings and no per-order read",
			again, listings, reads, most(again))
	}
	reset()
	if _, _, each = sweep("backfill after, listing refused", perOrder, backfill); got != each {
		t.Errorf("a reconcile stores other payments listed than read order by order")
	}
}

// paymentsListingSpoiled is a client whose every payments listing Keap answers with status and
// body (the sandbox never sees it), and how many it answered so.
func (w *world) paymentsListingSpoiled(t *testing.T, status int, body string) (*keap.Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	api := w.apiThrough(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/crm/rest/v2/sales/payments" {
				n.Add(1)
				rw.Header().Set("Content-Type", "application/json")
				rw.WriteHeader(status)
				io.WriteString(rw, body)
				return
			}
			next.ServeHTTP(rw, r)
		})
	})
	return api, &n
}

// paidOrders counts the sandbox's orders something was paid on or refunded from, and all its
// orders.
func paidOrders(sb *sandbox.Server) (paid, orders int) {
	all := sb.Snapshot().Orders
	for _, o := range all {
		if o["total_paid"].(float64) != 0 || o["refund_total"].(float64) != 0 {
			paid++
		}
	}
	return paid, len(all)
}

// paymentCalls counts the payment reads among the sandbox's requests: listings of many orders'
// and reads of one order's.
func paymentCalls(reqs []sandbox.RequestRecord) (listings, perOrder int) {
	for _, r := range reqs {
		switch {
		case r.Path == "/crm/rest/v2/sales/payments":
			listings++
		case strings.HasPrefix(r.Path, "/crm/rest/v1/orders/") && strings.HasSuffix(r.Path, "/payments"):
			perOrder++
		}
	}
	return listings, perOrder
}

// storedPayments is every stored order's Keap object (with its payments) and every payment
// row, by Keap's ids: what two ways of reading must agree on, local ids aside.
func (w *world) storedPayments(t *testing.T) string {
	t.Helper()
	var s string
	if err := w.db.QueryRow(context.Background(), `
select jsonb_build_object(
  'orders', (select coalesce(jsonb_agg(jsonb_build_array(keap_id, keap_object) order by keap_id), '[]') from keap.orders where account_id = $1),
  'payments', (select coalesce(jsonb_agg(jsonb_build_array(o.keap_id, to_jsonb(p) - 'id' - 'order_id') order by o.keap_id, p.keap_id), '[]')
                 from keap.order_payments p join keap.orders o on o.id = p.order_id where o.account_id = $1))::text`,
		w.account).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
