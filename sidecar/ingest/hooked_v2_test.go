package ingest_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// A batch of hooked changes of products or opportunities, whose v2 listings cannot filter by
// time, is read through v2's listing of the changed records (products by their ids,
// opportunities newest first) in one call, where listing the whole collection took a page per
// 1000 records. Each record is stored as a GET of it stores it, as it is when the batch is read
// a GET per id, and when Keap refuses the listing the worker reads the batch as before.
func TestHookedReadSameEitherWay(t *testing.T) {
	for _, name := range []string{"product", "opportunity"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			typ, _ := objecttype.ByName(name)
			h := hookedChanges[name]
			w := newWorld(t, 20)
			ctx := context.Background()
			const collection = 1500 // two pages of the whole listing
			if err := h.seed(w, collection); err != nil {
				t.Fatal(err)
			}
			if err := w.sweeper.Backfill(ctx, w.account, append(slices.Clone(h.needs), name)); err != nil {
				t.Fatal(err)
			}
			if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
				t.Fatal(err)
			}
			ids := w.keapIDs(t, typ)
			change := func(ids []int64) {
				t.Helper()
				for i, id := range ids {
					if _, err := h.change(w, id, i); err != nil {
						t.Fatal(err)
					}
				}
				w.sb.FlushHooks()
				if err := w.sb.WaitHooksIdle(ctx); err != nil {
					t.Fatal(err)
				}
				w.sb.ClearRequests()
			}

			// A GET per id, as for a few changes.
			w.worker.ListThreshold = 1 << 20
			change(ids[:10])
			w.drain(t)
			if got := len(w.sb.Requests()); got != 10 {
				t.Errorf("10 changes read a GET each: %d calls", got)
			}
			w.storesAsGet(t, "a GET each", typ, ids[:10])

			// Listed: one call for the batch, however large the collection.
			w.worker.ListThreshold = 1
			change(ids[10:40])
			w.drain(t)
			if reqs := w.sb.Requests(); len(reqs) != 1 || !strings.Contains(reqs[0].Query, "filter=product_ids") && !strings.Contains(reqs[0].Query, "order_by=update_time") {
				t.Errorf("30 changes among %d: %d calls (%v), want one listing of the changed records", collection, len(reqs), reqs)
			}
			w.storesAsGet(t, "listed", typ, ids[10:40])

			// Keap refuses the listing: the whole collection is listed, as before.
			api, refused := w.listingRefused(t, typ.V2.Path)
			w.worker.API = func(context.Context, string) (ingest.Keap, error) { return api, nil }
			change(ids[40:70])
			w.drain(t)
			if refused.Load() != 1 || len(w.sb.Requests()) != (collection+999)/1000 {
				t.Errorf("listing refused %d times, then %d calls; want it tried once, then the collection's %d pages",
					refused.Load(), len(w.sb.Requests()), (collection+999)/1000)
			}
			w.storesAsGet(t, "after a refused listing", typ, ids[40:70])
		})
	}
}

// keapIDs are the Keap ids of typ's records here, in order.
func (w *world) keapIDs(t *testing.T, typ objecttype.Type) []int64 {
	t.Helper()
	var ids []int64
	// The table comes from the registry, not from input.
	if err := w.db.QueryRow(context.Background(), `select coalesce(array_agg(keap_id order by keap_id), '{}') from keap.`+typ.Table+
		` where account_id = $1`, w.account).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

// storesAsGet checks that each record stores exactly what Keap's GET of it gives.
func (w *world) storesAsGet(t *testing.T, how string, typ objecttype.Type, ids []int64) {
	t.Helper()
	for _, id := range ids {
		o, err := w.api.GetObject(context.Background(), typ.V2.Path, keap.ID(id), typ.V2.Fields...)
		if err != nil {
			t.Fatal(err)
		}
		if w.count(t, `select count(*) from keap.`+typ.Table+` where account_id = $1 and keap_id = $2 and keap_object = $3::jsonb`,
			w.account, id, string(o.Raw)) != 1 {
			t.Errorf("%s: %s %d is not stored as Keap's GET gives it: %s", how, typ.Name, id, o.Raw)
		}
	}
}

// listingRefused is a client to whose listings of the changed records at path (filtered by id,
// or ordered) Keap answers 400, and how many it answered so; the whole listing goes through.
func (w *world) listingRefused(t *testing.T, path string) (*keap.Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	api := w.apiThrough(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if r.URL.Path == "/crm/rest"+path && (q.Has("filter") || q.Has("order_by")) {
				n.Add(1)
				rw.Header().Set("Content-Type", "application/json")
				rw.WriteHeader(http.StatusBadRequest)
				io.WriteString(rw, `{"message": "Invalid filter"}`)
				return
			}
			next.ServeHTTP(rw, r)
		})
	})
	return api, &n
}
