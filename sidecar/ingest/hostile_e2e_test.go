package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
)

// A contact whose name holds a NUL (PostgreSQL's text and jsonb refuse it) arrives by hook with
// 8 valid ones, and a second delivery is claimed into the same group. The 8 and the neighbour are
// applied; the bad one is applied with the NUL removed and parked with its original, escaped;
// nothing is left to retry. On the code before the storable rule, parking it failed the same way
// as applying it, and the whole group waited for retries without the 8.
func TestHookBatchWithANULContactAppliesTheOthers(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	var valid []int64
	var bad int64
	for i := range 9 {
		name := fmt.Sprintf("Valid %d", i)
		if i == 4 {
			name = "Ann\x00Lee"
		}
		id, err := w.sb.CreateContact(map[string]any{"given_name": name,
			"email_addresses": []map[string]string{{"email": fmt.Sprintf("h%d@example.com", i), "field": "EMAIL1"}}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 4 {
			bad = id
		} else {
			valid = append(valid, id)
		}
	}
	w.sb.FlushHooks()
	if err := w.sb.WaitHooksIdle(ctx); err != nil {
		t.Fatal(err)
	}
	// A neighbouring delivery, due with the batch, lands in the same claimed group.
	neighbour, err := w.sb.CreateContact(map[string]any{"given_name": "Neighbour",
		"email_addresses": []map[string]string{{"email": "neighbour@example.com", "field": "EMAIL1"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.sb.FlushHooks()
	if err := w.sb.WaitHooksIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null and object_type = 'contact'`); n < 2 {
		t.Fatalf("%d inbox rows due; the test needs the batch and a neighbouring delivery", n)
	}
	w.worker.Window = 0
	w.drain(t)

	for i, id := range append(valid, neighbour) {
		if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1 and given_name like $2 || '%'`, id,
			map[bool]string{true: "Neighbour", false: "Valid"}[i == len(valid)]); got != 1 {
			t.Errorf("valid contact %d was not applied", id)
		}
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1 and given_name = 'AnnLee'`, bad); got != 1 {
		t.Errorf("the NUL contact was not applied with the NUL removed")
	}
	var original, stored, cause string
	if err := w.db.QueryRow(ctx, `select payload ->> 'original', payload -> 'record' ->> 'given_name', error
	    from keapsync.dead_letters where account_id = $1 and object_type = 'contact' and keap_id = $2 and status = 'parked'`,
		w.account, bad).Scan(&original, &stored, &cause); err != nil {
		t.Fatalf("no dead letter for the NUL contact: %v", err)
	}
	if !strings.Contains(original, `"given_name":"Ann\u0000Lee"`) || stored != "AnnLee" || !strings.Contains(cause, "NUL") {
		t.Errorf("dead letter: original %q, stored %q, error %q", original, stored, cause)
	}
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null`); got != 0 {
		t.Errorf("%d inbox rows still waiting for a retry", got)
	}
	if got := w.count(t, `select count(*) from keapsync.dead_letters where keap_id is distinct from $1`, bad); got != 0 {
		t.Errorf("%d other dead letters", got)
	}
}

// A tag named with a NUL used to fail the tag sweep, and the sweep returned on it before contacts
// and orders were looked at, every run. Now the tag is stored without the NUL (and parked with
// its original), every other type is reconciled, and the next reconcile passes again, with the
// same one letter.
func TestReconcileMovesPastANULTag(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	tag, err := w.sb.CreateTag("VIP\x00customers", "")
	if err != nil {
		t.Fatal(err)
	}
	state := w.sb.Snapshot()
	contact := idOf(t, state.Contacts[0])
	if err := w.sb.EditContact(contact, map[string]any{"given_name": "Reconciled"}); err != nil {
		t.Fatal(err)
	}
	order, err := w.sb.CreateOrder(map[string]any{"contact_id": contact, "order_title": "After the tag", "order_type": "Offline",
		"order_items": []map[string]any{{"product_id": state.Products[0].ID, "quantity": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		if err := w.sweeper.Reconcile(ctx, w.account, ingest.ObjectTypes); err != nil {
			t.Fatalf("reconcile %d: %v", run, err)
		}
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1 and given_name = 'Reconciled'`, contact); got != 1 {
		t.Error("the contact edit was not reconciled")
	}
	if got := w.count(t, `select count(*) from keap.orders where keap_id = $1`, order); got != 1 {
		t.Error("the new order was not reconciled")
	}
	if got := w.count(t, `select count(*) from keap.tags where keap_id = $1 and name = 'VIPcustomers'`, tag); got != 1 {
		t.Error("the NUL tag was not stored without its NUL")
	}
	if got := w.count(t, `select count(*) from keapsync.dead_letters where object_type = 'tag' and keap_id = $1 and status = 'parked'
	    and payload ->> 'original' like '%VIP\\u0000customers%'`, tag); got != 1 {
		t.Errorf("%d open dead letters keep the tag's original; want exactly one across both runs", got)
	}
}

// Keap (here a proxy in front of the sandbox) answers 200 with an empty body for one order. The
// client used to take that for an order with id 0, parked as "order from Keap has no id" with the
// real id lost. Now it is an error for that id: the order is parked under its own id with the
// status Keap sent, and the orders beside it are applied.
func TestEmptySuccessParksTheRecordUnderItsID(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	state := w.sb.Snapshot()
	var orders []int64
	for i := range 3 {
		id, err := w.sb.CreateOrder(map[string]any{"contact_id": idOf(t, state.Contacts[0]), "order_title": fmt.Sprintf("Order %d", i),
			"order_type": "Offline", "order_items": []map[string]any{{"product_id": state.Products[0].ID, "quantity": 1}}})
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, id)
	}
	blank := fmt.Sprintf("/crm/rest/v1/orders/%d", orders[1])
	api := w.apiThrough(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.URL.Path == blank {
				rw.WriteHeader(http.StatusOK) // and no body
				return
			}
			next.ServeHTTP(rw, r)
		})
	})
	w.worker.API = func(context.Context, string) (ingest.Keap, error) { return api, nil }
	for _, id := range orders {
		w.deliver(t, "order.edit", id)
	}
	w.worker.Window = 0
	w.drain(t)

	for _, id := range []int64{orders[0], orders[2]} {
		if got := w.count(t, `select count(*) from keap.orders where keap_id = $1`, id); got != 1 {
			t.Errorf("order %d beside the blank one was not applied", id)
		}
	}
	if got := w.count(t, `select count(*) from keap.orders where keap_id = $1 or keap_id = 0`, orders[1]); got != 0 {
		t.Errorf("the blank answer was applied as an order (%d rows)", got)
	}
	if got := w.count(t, `select count(*) from keapsync.dead_letters where object_type = 'order' and keap_id = $1 and http_status = 200
	    and error like '%answer unusable%'`, orders[1]); got != 1 {
		t.Errorf("the blank order is not parked under its own id (%d letters)", got)
	}
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null`); got != 0 {
		t.Errorf("%d inbox rows still waiting", got)
	}
}

// A contact Keap lists in a shape the client cannot decode (here a proxy turns its
// email_opted_in into "maybe") used to fail its whole page, and so every reconcile of contacts.
// Now it is parked under its id, the other contacts are reconciled, and the next run passes too.
func TestReconcileMovesPastAnUndecodableContact(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 6)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	state := w.sb.Snapshot()
	bad, edited := idOf(t, state.Contacts[1]), idOf(t, state.Contacts[2])
	for _, id := range []int64{bad, edited} {
		if err := w.sb.EditContact(id, map[string]any{"given_name": "Changed"}); err != nil {
			t.Fatal(err)
		}
	}
	api := w.apiThrough(t, undecodableContact(t, bad))
	sweeper := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return api, nil }, PageSize: 100}
	for run := 1; run <= 2; run++ {
		if err := sweeper.Reconcile(ctx, w.account, []string{"contact"}); err != nil {
			t.Fatalf("reconcile %d: %v", run, err)
		}
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1 and given_name = 'Changed'`, edited); got != 1 {
		t.Error("the contact beside the undecodable one was not reconciled")
	}
	if got := w.count(t, `select count(*) from keapsync.dead_letters where object_type = 'contact' and keap_id = $1
	    and status = 'parked' and error like '%does not decode%' and payload ->> 'email_opted_in' = 'maybe'`, bad); got != 1 {
		t.Errorf("%d open dead letters for the undecodable contact, want one keeping what Keap sent", got)
	}
}

// Tags cannot be listed at all (Keap answers 500 every time): reconcile still sweeps contacts and
// orders, and reports the tag failure. Tags used to be swept first and end the run.
func TestReconcileSweepsEachTypeWhateverTheOthersDo(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	state := w.sb.Snapshot()
	contact := idOf(t, state.Contacts[0])
	if err := w.sb.EditContact(contact, map[string]any{"given_name": "Reconciled"}); err != nil {
		t.Fatal(err)
	}
	order, err := w.sb.CreateOrder(map[string]any{"contact_id": contact, "order_title": "Despite tags", "order_type": "Offline",
		"order_items": []map[string]any{{"product_id": state.Products[0].ID, "quantity": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	api := w.apiThrough(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/crm/rest/v1/tags" {
				http.Error(rw, `{"message":"Internal Server Error"}`, http.StatusInternalServerError)
				return
			}
			next.ServeHTTP(rw, r)
		})
	})
	sweeper := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return api, nil }}
	err = sweeper.Reconcile(ctx, w.account, ingest.ObjectTypes)
	if err == nil || !strings.Contains(err.Error(), "reconcile tags") || strings.Contains(err.Error(), "reconcile contacts") {
		t.Fatalf("want only the tag sweep reported, got %v", err)
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1 and given_name = 'Reconciled'`, contact); got != 1 {
		t.Error("contacts were not reconciled after the tag sweep failed")
	}
	if got := w.count(t, `select count(*) from keap.orders where keap_id = $1`, order); got != 1 {
		t.Error("orders were not reconciled after the tag sweep failed")
	}
}

// undecodableContact is a proxy (for apiThrough) that lists contact id in a shape the client
// cannot decode: its email_opted_in is "maybe".
func undecodableContact(t *testing.T, id int64) func(next http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/crm/rest/v1/contacts" {
				next.ServeHTTP(rw, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var page map[string]any
			dec := json.NewDecoder(rec.Body)
			dec.UseNumber()
			if err := dec.Decode(&page); err != nil {
				t.Error(err)
				return
			}
			for _, c := range page["contacts"].([]any) {
				if c := c.(map[string]any); fmt.Sprint(c["id"]) == fmt.Sprint(id) {
					c["email_opted_in"] = "maybe"
				}
			}
			rw.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(rw).Encode(page)
		})
	}
}

// apiThrough is a Keap client whose calls pass through wrap on their way to the sandbox: Keap
// misbehaving in ways the sandbox never does.
func (w *world) apiThrough(t *testing.T, wrap func(next http.Handler) http.Handler) *keap.Client {
	t.Helper()
	sandboxURL, err := url.Parse(w.sb.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(wrap(httputil.NewSingleHostReverseProxy(sandboxURL)))
	t.Cleanup(proxy.Close)
	cfg := keap.DefaultConfig()
	cfg.APIURL = proxy.URL + "/crm/rest"
	cfg.Credentials = keap.APIKey(w.sb.Credentials().PersonalKey)
	cfg.Retry = keap.RetryPolicy{MaxAttempts: 2, MaxThrottled: 30, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	return w.client(t, cfg)
}

// A backfill asks for pages ahead by offset; one holding a contact the client cannot decode
// cannot vouch for its range (the contact would be dropped unseen), so that range is walked:
// the contact is parked under its id, as in any listing, and every other contact is stored.
func TestBackfillParksAnUndecodableContactInAPageAhead(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 60)
	ctx := context.Background()
	bad := idOf(t, w.sb.Snapshot().Contacts[25]) // in the third page asked for ahead
	api := w.apiThrough(t, undecodableContact(t, bad))
	sweeper := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return api, nil },
		PageSize: 10, ListLimit: 10, Fetchers: 4}
	if err := sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id <> $1`, bad); got != 59 {
		t.Errorf("%d of the 59 other contacts stored", got)
	}
	if got := w.count(t, `select count(*) from keapsync.dead_letters where object_type = 'contact' and keap_id = $1
	    and status = 'parked' and error like '%does not decode%'`, bad); got != 1 {
		t.Errorf("%d open dead letters for the undecodable contact, want one", got)
	}
}
