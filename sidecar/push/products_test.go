package push_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/sandbox/keapspec"
)

// Product edits, inserts and deletes made here reach Keap. An insert is created with its
// price_cents as the bare number Keap's create takes; without one it is parked with the reason.
func TestPushesProducts(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	sweeper := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return w.api, nil }}
	if err := sweeper.Backfill(ctx, w.account, []string{"product"}); err != nil {
		t.Fatal(err)
	}
	w.exec(`insert into keapsync.settings (account_id, propagate_deletes) values ($1, true)
	        on conflict (account_id) do update set propagate_deletes = true`, w.account)
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	w.sb.ClearRequests()

	var id, kid int64
	if err := w.db.QueryRow(ctx, `select id, keap_id from keap.products order by keap_id limit 1`).Scan(&id, &kid); err != nil {
		t.Fatal(err)
	}
	w.exec(`update keap.products set description = 'Now with more', active = false where id = $1`, id)
	w.quiet()
	if calls := w.writes2(); len(calls) != 1 || !strings.HasPrefix(calls[0], "PATCH /v2/products/"+strconv.FormatInt(kid, 10)+"?update_mask=active&update_mask=description") {
		t.Errorf("calls: %v", calls)
	}
	found := false
	for _, p := range w.sb.Snapshot().Products {
		if p.ID == kid {
			found = p.Description == "Now with more"
		}
	}
	if !found {
		t.Error("the edit did not reach Keap")
	}

	// Without a price Keap cannot create it: parked with the reason; setting the price sends it.
	local := w.int(`insert into keap.products (account_id, name, sku) values ($1, 'Local only', 'LOC-1') returning id`, w.account)
	w.eventually("the priceless insert parked", func() bool {
		return w.int(`select count(*) from keapsync.dead_letters where object_type = 'product' and local_id = $1
		               and error like 'Keap needs a price%'`, local) == 1
	})
	w.quiet()
	w.sb.ClearRequests()
	w.exec(`update keap.products set price_cents = 1250 where id = $1`, local)
	w.quiet()
	created := w.int(`select coalesce(keap_id, 0) from keap.products where id = $1`, local)
	if created == 0 {
		t.Fatal("no Keap id written back for the product created here")
	}
	if calls := w.writes2(); !slices.Equal(calls, []string{"POST /v2/products"}) {
		t.Errorf("calls: %v", calls)
	}
	made := false
	for _, p := range w.sb.Snapshot().Products {
		if p.ID == created {
			made = true
			if p.Name != "Local only" || p.SKU != "LOC-1" || p.Price != 12.50 {
				t.Errorf("in Keap: %+v", p)
			}
		}
	}
	if !made {
		t.Fatalf("product %d is not in Keap", created)
	}
	// Keap's answer settles the row: the currency is Keap's, and nothing is left to push.
	if w.int(`select count(*) from keap.products where id = $1 and currency_code = 'USD' and price_cents = 1250`, local) != 1 {
		t.Error("Keap's answer did not settle the price and currency")
	}
	if w.int(`select count(*) from keap.products where id = $1
	           and keapsync.pending_push(account_id, 'product', id) ->> 'op' <> 'none'`, local) != 0 {
		t.Error("the product created here still differs from what Keap holds")
	}

	w.sb.ClearRequests()
	w.exec(`delete from keap.products where id = $1`, id)
	w.quiet()
	for _, p := range w.sb.Snapshot().Products {
		if p.ID == kid {
			t.Error("the product deleted here is still in Keap")
		}
	}
}

// The body push_request builds for a product made here is what Keap's v2 document says
// createProduct takes (name, price as a bare integer, short_description); the object shape
// Keap reads prices in is not, so the check can tell the two apart.
func TestProductCreateBodyMeetsSpec(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	var account string
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, keap_tenant, credential) values ('P', 'p1', 'api_key') returning id`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	var req struct {
		Op   string         `json:"op"`
		Body map[string]any `json:"body"`
	}
	var id int64
	if err := db.QueryRow(ctx, `insert into keap.products (account_id, name, sku, active, price_cents, currency_code)
	                            values ($1, 'Widget', 'W-1', true, 1250, 'EUR') returning id`, account).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := db.QueryRow(ctx, `select keapsync.push_request($1, 'product', $2)`, account, id).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "Widget", "sku": "W-1", "active": true, "price": 1250.0, "short_description": ""}
	if req.Op != "create" || !maps.Equal(req.Body, want) {
		t.Fatalf("push_request = %s", raw)
	}
	v, err := keapspec.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	check := func(body map[string]any) error {
		b, _ := json.Marshal(body)
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.infusionsoft.com/crm/rest/v2/products", bytes.NewReader(b))
		r.Header.Set("Content-Type", "application/json")
		return v.ValidateBody(ctx, r, b)
	}
	if err := check(req.Body); err != nil {
		t.Errorf("Keap's document refuses the create body: %v", err)
	}
	asRead := maps.Clone(req.Body)
	asRead["price"] = map[string]any{"amount": 1250, "currency_code": "USD"}
	if check(asRead) == nil {
		t.Error("the document took a price in the shape Keap reads it: the check cannot tell")
	}
	delete(asRead, "price")
	if check(asRead) == nil {
		t.Error("the document took a create without a price")
	}
}
