package ingest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
)

// Hooked payments are stored the same whichever way they are read: one order's at a time
// (GET /v1/orders/{id}/payments, a few hooks) or many orders' in one listing
// (GET /v2/sales/payments?filter=order_ids==…, a batch naming many orders). Each order's stored
// payments are exactly what the per-order read gives.
func TestPaymentsSameEitherWay(t *testing.T) {
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
		var perOrder, listed int
		for _, r := range w.sb.Requests() {
			switch {
			case r.Path == "/crm/rest/v2/sales/payments":
				listed++
			case strings.HasPrefix(r.Path, "/crm/rest/v1/orders/") && strings.HasSuffix(r.Path, "/payments"):
				perOrder++
			}
		}
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
	var listings atomic.Int32
	api := w.apiThrough(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/crm/rest/v2/sales/payments" {
				listings.Add(1)
				rw.Header().Set("Content-Type", "application/json")
				io.WriteString(rw, `{"payments": [{"id": "1", "order_ids": {"not": "a list"}}], "next_page_token": ""}`)
				return
			}
			next.ServeHTTP(rw, r)
		})
	})
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
	perOrder := 0
	for _, r := range w.sb.Requests() {
		if strings.HasPrefix(r.Path, "/crm/rest/v1/orders/") && strings.HasSuffix(r.Path, "/payments") {
			perOrder++
		}
	}
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
