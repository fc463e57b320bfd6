package ingest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// hookedRead is how a type whose v2 listing cannot filter by time reads a batch of hooked
// changes: batch tells its listing of the changed records by the query, get reads one record as
// a GET per id does.
type hookedRead struct {
	batch func(path string, q url.Values) bool
	get   func(ctx context.Context, api *keap.Client, typ objecttype.Type, id int64) (json.RawMessage, error)
}

func getV2(ctx context.Context, api *keap.Client, typ objecttype.Type, id int64) (json.RawMessage, error) {
	o, err := api.GetObject(ctx, typ.V2.Path, keap.ID(id), typ.V2.Fields...)
	if err != nil {
		return nil, err
	}
	return o.Raw, nil
}

var hookedReads = map[string]hookedRead{
	"product": {
		batch: func(path string, q url.Values) bool { return path == "/crm/rest/v2/products" && q.Has("filter") },
		get:   getV2,
	},
	"opportunity": {
		batch: func(path string, q url.Values) bool {
			return path == "/crm/rest/v2/opportunities" && q.Get("order_by") == "update_time desc"
		},
		get: getV2,
	},
	"subscription": {
		batch: func(path string, q url.Values) bool {
			return path == "/crm/rest/v2/subscriptions" && q.Get("order_by") == "modification_time desc"
		},
		get: func(ctx context.Context, api *keap.Client, _ objecttype.Type, id int64) (json.RawMessage, error) {
			s, err := api.GetSubscriptionV2(ctx, keap.ID(id))
			if err != nil {
				return nil, err
			}
			return s.Raw, nil
		},
	},
}

// A batch of hooked changes of products, opportunities or subscriptions, whose v2 listings
// cannot filter by time, is read through v2's listing of the changed records (products by
// their ids, the others newest first) in one call, where listing the whole collection took a
// page per 1000 records. Each record is stored as a GET of it stores it, as it is when the batch
// is read a GET per id, and when Keap refuses the listing the worker reads the batch as before.
func TestHookedReadSameEitherWay(t *testing.T) {
	for name, read := range hookedReads {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const collection = 1500 // two pages of the whole listing
			typ, _ := objecttype.ByName(name)
			h := hookedChanges[name]
			w := newWorld(t, max(20, h.contacts*collection))
			ctx := context.Background()
			if h.seed != nil {
				if err := h.seed(w, collection); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.sweeper.Backfill(ctx, w.account, append(slices.Clone(h.needs), name)); err != nil {
				t.Fatal(err)
			}
			if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
				t.Fatal(err)
			}
			ids := w.keapIDs(t, typ)
			if len(ids) < collection {
				t.Fatalf("%d %ss here, want %d", len(ids), name, collection)
			}
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
			stored := func(how string, ids []int64) {
				t.Helper()
				for _, id := range ids {
					raw, err := read.get(ctx, w.api, typ, id)
					if err != nil {
						t.Fatal(err)
					}
					if w.count(t, `select count(*) from keap.`+typ.Table+` where account_id = $1 and keap_id = $2 and keap_object = $3::jsonb`,
						w.account, id, string(raw)) != 1 {
						t.Errorf("%s: %s %d is not stored as Keap's GET gives it: %s", how, name, id, raw)
					}
				}
			}

			// A GET per id, as for a few changes.
			w.worker.ListThreshold = 1 << 20
			change(ids[:10])
			w.drain(t)
			if got := len(w.sb.Requests()); got != 10 {
				t.Errorf("10 changes read a GET each: %d calls", got)
			}
			stored("a GET each", ids[:10])

			// Listed: one call for the batch, however large the collection.
			w.worker.ListThreshold = 1
			change(ids[10:40])
			w.drain(t)
			if reqs := w.sb.Requests(); len(reqs) != 1 || !read.batch(reqs[0].Path, query(t, reqs[0].Query)) {
				t.Errorf("30 changes among %d: %d calls (%v), want one listing of the changed records", len(ids), len(reqs), reqs)
			}
			stored("listed", ids[10:40])

			// Keap refuses the listing: the whole collection is listed, as before.
			var refused atomic.Int32
			api := w.apiThrough(t, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
					if !read.batch(r.URL.Path, r.URL.Query()) {
						next.ServeHTTP(rw, r)
						return
					}
					refused.Add(1)
					rw.Header().Set("Content-Type", "application/json")
					rw.WriteHeader(http.StatusBadRequest)
					io.WriteString(rw, `{"message": "Invalid filter"}`)
				})
			})
			w.worker.API = func(context.Context, string) (ingest.Keap, error) { return api, nil }
			change(ids[40:70])
			w.drain(t)
			if pages := (len(ids) + 999) / 1000; refused.Load() != 1 || len(w.sb.Requests()) != pages {
				t.Errorf("listing refused %d times, then %d calls; want it tried once, then the collection's %d pages",
					refused.Load(), len(w.sb.Requests()), pages)
			}
			stored("after a refused listing", ids[40:70])
		})
	}
}

func query(t *testing.T, raw string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return q
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
