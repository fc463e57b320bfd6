package ingest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

// Notes and orders are read through v1, whose records carry no custom fields; a person's change
// of one in Keap still arrives by hook, the value read from v2's listing of the same records: a
// lone change by id, a batch with one listing of what changed in its window (a call per 1000
// changed, so the hooked cost stays within the goal), never a v2 call per record.
func TestV1TypesCustomFieldsArriveByHook(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ, table, recordType, list string
		create                       func(w *world, contact int64) (int64, error)
		set                          func(w *world, id, field int64, content any) error
	}{
		{"note", "notes", "TASK_NOTE_APPOINTMENT", "/v2/notes",
			func(w *world, contact int64) (int64, error) {
				return w.sb.CreateNote(map[string]any{"contact_id": contact, "title": "Called", "user_id": 1})
			},
			func(w *world, id, field int64, content any) error { return w.sb.SetNoteCustomField(id, field, content) }},
		{"order", "orders", "ORDER", "/v2/orders",
			func(w *world, contact int64) (int64, error) {
				return w.sb.CreateOrder(map[string]any{"contact_id": contact, "order_title": "Seats", "order_type": "Online",
					"order_items": []any{map[string]any{"product_id": 1, "quantity": 1}}})
			},
			func(w *world, id, field int64, content any) error {
				return w.sb.SetOrderCustomField(id, field, content)
			}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, 3)
			ctx := context.Background()
			field, err := w.sb.AddCustomFieldTo(tc.recordType, "Priority code", "Text")
			if err != nil {
				t.Fatal(err)
			}
			contact := idOf(t, w.sb.Snapshot().Contacts[0])
			var ids []int64
			for range 5 {
				id, err := tc.create(w, contact)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
				t.Fatal(err)
			}
			if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
				t.Fatal(err)
			}
			values := func(v string) int {
				return w.count(t, fmt.Sprintf(`select count(*) from keap.%s_custom where account_id = $1 and keap_id = any ($2) and priority_code = $3`, tc.table),
					w.account, ids, v)
			}
			v2Lists := func() (n int) {
				for _, r := range w.sb.Requests() {
					if r.Method == "GET" && strings.HasSuffix(r.Path, tc.list) {
						n++
					}
				}
				return n
			}

			w.sb.ClearRequests()
			if err := tc.set(w, ids[0], field, "A"); err != nil {
				t.Fatal(err)
			}
			w.settle(t)
			if got := values("A"); got != 1 {
				t.Fatalf("the value set on one %s in Keap did not arrive (%d)", tc.typ, got)
			}
			if n := v2Lists(); n != 1 {
				t.Errorf("one changed %s cost %d v2 listings, want 1 (by id)", tc.typ, n)
			}

			w.sb.ClearRequests()
			for _, id := range ids {
				if err := tc.set(w, id, field, "B"); err != nil {
					t.Fatal(err)
				}
			}
			w.settle(t)
			if got := values("B"); got != len(ids) {
				t.Fatalf("%d of %d values set in Keap arrived", got, len(ids))
			}
			if n := v2Lists(); n != 1 {
				t.Errorf("%d changed %ss cost %d v2 listings, want 1 (their window)", len(ids), tc.typ, n)
			}
			if tc.typ == "order" {
				// An order's reconcile walks every order and applies only those whose v1 JSON
				// differs from what is stored, custom fields aside (v1 lists none): with nothing
				// changed, none is applied and no custom field is read.
				w.sb.ClearRequests()
				if err := w.sweeper.Reconcile(ctx, w.account, []string{"order"}); err != nil {
					t.Fatal(err)
				}
				if n := v2Lists(); n != 0 {
					t.Errorf("a reconcile of unchanged orders read custom fields %d times", n)
				}
			}
		})
	}
}
