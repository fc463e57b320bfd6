package ingest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// hookedRead is how a type whose listing cannot filter by time (v2's, or tags' v1 one) reads a
// batch of hooked changes: batch tells its listing of the changed records by the query, get reads one record as
// a GET per id does.
type hookedRead struct {
	batch func(path string, q url.Values) bool
	// aside, where set, is the path of a call the batch's listing may add (tags: their
	// categories, which v2's tag names by id alone).
	aside string
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
	"tag": {
		// A listing that names a categorised tag lists the categories too: one more call.
		batch: func(path string, q url.Values) bool { return path == "/crm/rest/v2/tags" && q.Has("filter") },
		aside: "/crm/rest/v2/tags/categories",
		get: func(ctx context.Context, api *keap.Client, _ objecttype.Type, id int64) (json.RawMessage, error) {
			tag, err := api.GetTag(ctx, keap.ID(id))
			if err != nil {
				return nil, err
			}
			return tag.Raw, nil
		},
	},
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

// A batch of hooked changes of tags, products, opportunities or subscriptions, whose listings
// cannot filter by time, is read through v2's listing of the changed records (tags and products
// by their ids, the others newest first) in one call (tags: and their categories), where
// listing the whole collection took a page per 1000 records. Each record is stored as a GET of
// it stores it (a tag as v1's GET gives it), as it is when the batch is read a GET per id, and
// when Keap refuses the listing the worker reads the batch as before.
func TestHookedReadSameEitherWay(t *testing.T) {
	for name, read := range hookedReads {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, ids := newHookedWorld(t, name, 1500, sandbox.Options{}) // two pages of the whole listing

			// A GET per id, as for a few changes.
			w.worker.ListThreshold = 1 << 20
			w.changeInKeap(t, name, ids[:10])
			w.drain(t)
			if got := len(w.sb.Requests()); got != 10 {
				t.Errorf("10 changes read a GET each: %d calls", got)
			}
			w.storesAsGet(t, "a GET each", name, ids[:10])

			// Listed: one call for the batch, however large the collection (and one aside).
			w.worker.ListThreshold = 1
			w.changeInKeap(t, name, ids[10:40])
			w.drain(t)
			var listings, asides int
			for _, r := range w.sb.Requests() {
				if read.batch(r.Path, query(t, r.Query)) {
					listings++
				} else if r.Path == read.aside {
					asides++
				}
			}
			if reqs := w.sb.Requests(); listings != 1 || asides > 1 || len(reqs) != listings+asides {
				t.Errorf("30 changes among %d: %d calls (%v), want one listing of the changed records", len(ids), len(reqs), reqs)
			}
			w.storesAsGet(t, "listed", name, ids[10:40])

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
			w.changeInKeap(t, name, ids[40:70])
			w.drain(t)
			if pages := (len(ids) + 999) / 1000; refused.Load() != 1 || len(w.sb.Requests()) != pages {
				t.Errorf("listing refused %d times, then %d calls; want it tried once, then the collection's %d pages",
					refused.Load(), len(w.sb.Requests()), pages)
			}
			w.storesAsGet(t, "after a refused listing", name, ids[40:70])
		})
	}
}

// Keap documents the names order_by takes, not that update_time sorts opportunities by their
// last_updated_time. Should it list them in id order instead (Profile.TimeOrderIgnored), the walk
// newest first meets a record older than the batch's window first and stops, and the changed
// records are read a GET each: the cost changes, not what is stored.
func TestHookedNewestFirstUnordered(t *testing.T) {
	t.Parallel()
	const age = 3 * time.Hour // the collection's records are older than a batch's window
	w, ids := newHookedWorld(t, "opportunity", 50, sandbox.Options{Profile: sandbox.Profile{TimeOrderIgnored: true}, Clock: behindClock(age)})
	w.sb.Advance(age)
	w.worker.ListThreshold = 1
	w.changeInKeap(t, "opportunity", ids[20:]) // the first listed, ids[0], is unchanged and old
	w.drain(t)
	read := hookedReads["opportunity"]
	var listings, gets int
	for _, r := range w.sb.Requests() {
		if read.batch(r.Path, query(t, r.Query)) {
			listings++
		} else if strings.HasPrefix(r.Path, "/crm/rest/v2/opportunities/") {
			gets++
		}
	}
	if listings != 1 || gets != len(ids)-20 || len(w.sb.Requests()) != 1+gets {
		t.Errorf("%d changes listed in id order: %d listings, %d GETs, %d calls; want one listing stopped at once, then a GET each",
			len(ids)-20, listings, gets, len(w.sb.Requests()))
	}
	w.storesAsGet(t, "listed in id order", "opportunity", ids[20:])
}

// newHookedWorld is a world whose Keap holds collection records of the type (made as
// BenchmarkHookedChangesAPICalls makes them), backfilled and with hooks subscribed, and their
// Keap ids in order.
func newHookedWorld(t *testing.T, name string, collection int, o sandbox.Options) (*world, []int64) {
	t.Helper()
	typ, _ := objecttype.ByName(name)
	h := hookedChanges[name]
	o.Seed, o.Contacts = 7, max(20, h.contacts*collection)
	w := newWorldWith(t, o)
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
	var ids []int64
	// The table comes from the registry, not from input.
	if err := w.db.QueryRow(ctx, `select coalesce(array_agg(keap_id order by keap_id), '{}') from keap.`+typ.Table+
		` where account_id = $1`, w.account).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if len(ids) < collection {
		t.Fatalf("%d %ss here, want %d", len(ids), name, collection)
	}
	return w, ids
}

// changeInKeap changes the records in Keap as the benchmark does, waits for their hooks to be
// delivered and clears the request log.
func (w *world) changeInKeap(t *testing.T, name string, ids []int64) {
	t.Helper()
	for i, id := range ids {
		if _, err := hookedChanges[name].change(w, id, i); err != nil {
			t.Fatal(err)
		}
	}
	w.sb.FlushHooks()
	if err := w.sb.WaitHooksIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.sb.ClearRequests()
}

// storesAsGet checks that each record stores exactly what Keap's GET of it gives.
func (w *world) storesAsGet(t *testing.T, how, name string, ids []int64) {
	t.Helper()
	typ, _ := objecttype.ByName(name)
	for _, id := range ids {
		raw, err := hookedReads[name].get(context.Background(), w.api, typ, id)
		if err != nil {
			t.Fatal(err)
		}
		if w.count(t, `select count(*) from keap.`+typ.Table+` where account_id = $1 and keap_id = $2 and keap_object = $3::jsonb`,
			w.account, id, string(raw)) != 1 {
			t.Errorf("%s: %s %d is not stored as Keap's GET gives it: %s", how, name, id, raw)
		}
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
