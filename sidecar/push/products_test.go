package push_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

// Product edits and deletes made here reach Keap; a product inserted here is parked with the
// reason (Keap needs a price keapsync does not send), and the price stays Keap's.
func TestPushesProducts(t *testing.T) {
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

	w.exec(`insert into keap.products (account_id, name) values ($1, 'Local only')`, w.account)
	w.eventually("the insert parked", func() bool {
		return w.int(`select count(*) from keapsync.dead_letters where object_type = 'product' and error like '%does not create a product%'`) == 1
	})

	w.sb.ClearRequests()
	w.exec(`delete from keap.products where id = $1`, id)
	w.quiet()
	for _, p := range w.sb.Snapshot().Products {
		if p.ID == kid {
			t.Error("the product deleted here is still in Keap")
		}
	}
}
