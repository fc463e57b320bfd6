package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
)

// Custom fields by name for each type other than contacts whose Keap records carry them, as
// TestCustomFieldsByName does for contacts: a person adds fields in Keap and fills them on a
// record; the backfill stores the type's model and keap.<table>_custom has a typed column per
// label; a rename and a new field in Keap show after a reconcile (the old name is gone, the value
// kept); an update through the view reaches Keap as one PATCH of the record's custom fields, and
// clearing one value leaves Keap's others alone. Notes and orders are read through v1 and their
// custom fields through v2 (objecttype.CustomFieldsV2): the write is v2's PATCH of them, then
// the v1 read or write whose answer is recorded.
func TestCustomFieldsByNameEveryType(t *testing.T) {
	t.Parallel()
	v2Create := func(path string, body func(w *world) map[string]any) func(w *world, custom []any) int64 {
		return func(w *world, custom []any) int64 {
			b := body(w)
			b["custom_fields"] = custom
			rec, err := w.api.CreateObject(context.Background(), path, b)
			if err != nil {
				w.t.Fatal(err)
			}
			return int64(rec.ID)
		}
	}
	// byPerson makes a record as a person in Keap would, then fills its fields one by one.
	byPerson := func(create func(w *world, contact int64) (int64, error), set func(w *world, id, field int64, content any) error) func(w *world, custom []any) int64 {
		return func(w *world, custom []any) int64 {
			id, err := create(w, w.sb.Snapshot().Contacts[0]["id"].(int64))
			if err != nil {
				w.t.Fatal(err)
			}
			for _, c := range custom {
				m := c.(map[string]any)
				f, _ := strconv.ParseInt(m["id"].(string), 10, 64)
				if err := set(w, id, f, m["content"]); err != nil {
					w.t.Fatal(err)
				}
			}
			return id
		}
	}
	for _, tc := range []struct {
		objectType, table, recordType, path string
		types                               []string // what to sweep, in the registry's order
		create                              func(w *world, custom []any) int64
		// writes are the calls other than reads a write of the custom fields makes.
		writes func(w *world, id int64) []string
	}{
		{"company", "companies", "COMPANY", "/v2/companies", []string{"company"},
			v2Create("/v2/companies", func(*world) map[string]any { return map[string]any{"company_name": "Acme"} }), nil},
		{"task", "tasks", "TASK_NOTE_APPOINTMENT", "/v2/tasks", []string{"task"},
			v2Create("/v2/tasks", func(*world) map[string]any { return map[string]any{"title": "Call back", "assigned_to_user_id": "1"} }), nil},
		{"opportunity", "opportunities", "OPPORTUNITY", "/v2/opportunities", []string{"opportunity_stage", "opportunity"},
			v2Create("/v2/opportunities", func(w *world) map[string]any {
				st, err := w.api.CreateObject(context.Background(), "/v2/opportunities/stages",
					map[string]any{"name": "Qualified", "order": 1, "probability": 20, "target_number_days": 7})
				if err != nil {
					w.t.Fatal(err)
				}
				contact := w.sb.Snapshot().Contacts[0]["id"].(int64)
				return map[string]any{"opportunity_title": "Deal", "contact_id": strconv.FormatInt(contact, 10),
					"stage_id": strconv.FormatInt(int64(st.ID), 10), "user_id": "1"}
			}), nil},
		// Keap's notes share the tasks' fields.
		{"note", "notes", "TASK_NOTE_APPOINTMENT", "/v2/notes", []string{"note"},
			byPerson(func(w *world, contact int64) (int64, error) {
				return w.sb.CreateNote(map[string]any{"contact_id": contact, "title": "Called", "user_id": 1})
			}, func(w *world, id, field int64, content any) error { return w.sb.SetNoteCustomField(id, field, content) }),
			func(w *world, id int64) []string {
				contact := w.sb.Snapshot().Contacts[0]["id"].(int64)
				return []string{fmt.Sprintf("PATCH /v2/contacts/%d/notes/%d?update_mask=custom_fields", contact, id)}
			}},
		{"order", "orders", "ORDER", "/v2/orders", []string{"order"},
			byPerson(func(w *world, contact int64) (int64, error) {
				return w.sb.CreateOrder(map[string]any{"contact_id": contact, "order_title": "Seats", "order_type": "Online",
					"order_items": []any{map[string]any{"product_id": 1, "quantity": 1}}})
			}, func(w *world, id, field int64, content any) error {
				return w.sb.SetOrderCustomField(id, field, content)
			}),
			nil},
	} {
		t.Run(tc.objectType, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, 2)
			ctx := context.Background()
			sweeper := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return w.api, nil }}

			// In Keap: two fields of the type, and a record that fills both.
			sizeID, err := w.sb.AddCustomFieldTo(tc.recordType, "Deal size", "DecimalNumber")
			if err != nil {
				t.Fatal(err)
			}
			liveID, err := w.sb.AddCustomFieldTo(tc.recordType, "Go-live", "Date")
			if err != nil {
				t.Fatal(err)
			}
			kid := tc.create(w, []any{
				map[string]any{"id": strconv.FormatInt(sizeID, 10), "content": 1250.5},
				map[string]any{"id": strconv.FormatInt(liveID, 10), "content": "2027-01-31"},
			})
			if err := sweeper.Backfill(ctx, w.account, tc.types); err != nil {
				t.Fatal(err)
			}
			if n := w.int(`select count(*) from keapsync.custom_fields where account_id = $1 and object_type = $2`, w.account, tc.objectType); n != 2 {
				t.Fatalf("%d %s fields stored, Keap has 2", n, tc.objectType)
			}
			// one reads a column of the record by name, as an analyst would.
			one := func(column string) (*string, error) {
				var v *string
				err := w.db.QueryRow(ctx, fmt.Sprintf(`select %s::text from keap.%s_custom where account_id = $1 and keap_id = $2`, column, tc.table),
					w.account, kid).Scan(&v)
				return v, err
			}
			if v, err := one("deal_size"); err != nil || v == nil || *v != "1250.5" {
				t.Fatalf("deal_size %v (%v), want 1250.5", deref(v), err)
			}
			var typ string
			if err := w.db.QueryRow(ctx, fmt.Sprintf(`select pg_typeof(deal_size)::text || ',' || pg_typeof(go_live)::text from keap.%s_custom limit 1`, tc.table)).
				Scan(&typ); err != nil || typ != "numeric,date" {
				t.Fatalf("column types %q (%v), want numeric,date", typ, err)
			}

			// In Keap: a rename (no hook, as in Keap) and a new field.
			if err := w.sb.RenameCustomField(sizeID, "Contract value"); err != nil {
				t.Fatal(err)
			}
			regionID, err := w.sb.AddCustomFieldTo(tc.recordType, "Region code", "Text")
			if err != nil {
				t.Fatal(err)
			}
			w.sb.ClearRequests()
			if err := sweeper.Reconcile(ctx, w.account, tc.types); err != nil {
				t.Fatal(err)
			}
			if n := w.modelCalls(tc.path + "/model"); n != 1 {
				t.Errorf("the reconcile read the %s model %d times, want once", tc.objectType, n)
			}
			var pgErr *pgconn.PgError
			if _, err := one("deal_size"); !errors.As(err, &pgErr) || pgErr.Code != "42703" {
				t.Fatalf("the old name still answers after the rename: %v", err)
			}
			if v, err := one("contract_value"); err != nil || v == nil || *v != "1250.5" {
				t.Fatalf("contract_value %v (%v) after the rename, want 1250.5", deref(v), err)
			}
			if v, err := one("region_code"); err != nil || v != nil {
				t.Fatalf("region_code %v (%v), want an empty column", deref(v), err)
			}

			// Writes through the view reach Keap: one PATCH of the custom fields each.
			w.start(w.pusher(w.config(nil)).Run)
			w.quiet()
			w.sb.ClearRequests()
			w.exec(fmt.Sprintf(`update keap.%s_custom set contract_value = 99, region_code = 'EU' where account_id = $1 and keap_id = $2`, tc.table),
				w.account, kid)
			w.quiet()
			patch := []string{fmt.Sprintf("PATCH %s/%d?update_mask=custom_fields", tc.path, kid)}
			if tc.writes != nil {
				patch = tc.writes(w, kid)
			}
			if calls := w.writes2(); fmt.Sprint(calls) != fmt.Sprint(patch) {
				t.Errorf("calls %v, want %v", calls, patch)
			}
			want := map[int64]string{sizeID: "99", liveID: "2027-01-31", regionID: "EU"}
			if got := w.customInKeap(tc.path, kid); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Keap's custom fields after the write: %v, want %v", got, want)
			}
			if v, err := one("contract_value"); err != nil || v == nil || *v != "99" {
				t.Errorf("contract_value %v (%v) after the write, want 99", deref(v), err)
			}

			// Clearing one value clears it in Keap and keeps the others.
			w.sb.ClearRequests()
			w.exec(fmt.Sprintf(`update keap.%s_custom set go_live = null where account_id = $1 and keap_id = $2`, tc.table), w.account, kid)
			w.quiet()
			if calls := w.writes2(); fmt.Sprint(calls) != fmt.Sprint(patch) {
				t.Errorf("calls %v, want %v", calls, patch)
			}
			delete(want, liveID)
			if got := w.customInKeap(tc.path, kid); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Keap's custom fields after clearing go_live: %v, want %v", got, want)
			}
			if n := w.modelCalls(tc.path + "/model"); n != 0 {
				t.Errorf("pushes read the model %d times", n)
			}
			if n := w.int(`select count(*) from keapsync.sync_state s where s.object_type = $1
			    and keapsync.pending_push(s.account_id, $1, s.local_id) ->> 'op' <> 'none'`, tc.objectType); n != 0 {
				t.Errorf("%d records still differ from what Keap holds", n)
			}
		})
	}
}

// customInKeap reads a v2 record's custom-field values from the sandbox, by field id (notes
// and orders, which v2 gets only under their contact or not at all, by listing their ids).
func (w *world) customInKeap(path string, id int64) map[int64]string {
	w.t.Helper()
	var o *keap.Object
	var err error
	if path == "/v2/notes" || path == "/v2/orders" {
		q := keap.ObjectQuery{IDs: []keap.ID{keap.ID(id)}}
		if path == "/v2/notes" {
			q.Fields = []string{"custom_fields"} // orders' listing sends them unasked
		}
		p, lerr := w.api.ListObjects(context.Background(), path, q)
		if err = lerr; err == nil && len(p.Items) != 1 {
			err = fmt.Errorf("%d listed", len(p.Items))
		}
		if err == nil {
			o = &p.Items[0]
		}
	} else {
		o, err = w.api.GetObject(context.Background(), path, keap.ID(id), "custom_fields")
	}
	if err != nil {
		w.t.Fatalf("get %s/%d: %v", path, id, err)
	}
	var rec struct {
		CustomFields []struct {
			ID      string `json:"id"`
			Content any    `json:"content"`
		} `json:"custom_fields"`
	}
	if err := json.Unmarshal(o.Raw, &rec); err != nil {
		w.t.Fatal(err)
	}
	out := map[int64]string{}
	for _, f := range rec.CustomFields {
		n, err := strconv.ParseInt(f.ID, 10, 64)
		if err != nil {
			w.t.Fatalf("custom field id %q", f.ID)
		}
		out[n] = fmt.Sprint(f.Content)
	}
	return out
}

// modelCalls counts the sandbox's logged reads of a model path (e.g. "/v2/tasks/model").
func (w *world) modelCalls(path string) int {
	n := 0
	for _, r := range w.sb.Requests() {
		if r.Method == "GET" && strings.HasSuffix(r.Path, path) {
			n++
		}
	}
	return n
}

// Subscriptions carry custom fields through v2 but are not written to Keap: a person's value
// and a rename in Keap show in keap.subscriptions_custom as for the other types, and a write
// through the view is parked with the reason, as any local change of a subscription is.
func TestSubscriptionCustomFieldsByName(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 40)
	ctx := context.Background()
	subs := w.sb.Snapshot().Subscriptions
	if len(subs) == 0 {
		t.Fatal("the sandbox made no subscriptions")
	}
	sub, err := strconv.ParseInt(subs[0]["id"].(string), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	fieldID, err := w.sb.AddCustomFieldTo("SUBSCRIPTION", "Renewal owner", "Text")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sb.SetSubscriptionCustomField(sub, fieldID, "Dana"); err != nil {
		t.Fatal(err)
	}
	sweeper := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return w.api, nil }}
	if err := sweeper.Backfill(ctx, w.account, []string{"subscription"}); err != nil {
		t.Fatal(err)
	}
	one := func(column string) (*string, error) {
		var v *string
		err := w.db.QueryRow(ctx, fmt.Sprintf(`select %s from keap.subscriptions_custom where account_id = $1 and keap_id = $2`, column),
			w.account, sub).Scan(&v)
		return v, err
	}
	if v, err := one("renewal_owner"); err != nil || v == nil || *v != "Dana" {
		t.Fatalf("renewal_owner %v (%v), want Dana", deref(v), err)
	}

	if err := w.sb.RenameCustomField(fieldID, "Account manager"); err != nil {
		t.Fatal(err)
	}
	if err := sweeper.Reconcile(ctx, w.account, []string{"subscription"}); err != nil {
		t.Fatal(err)
	}
	var pgErr *pgconn.PgError
	if _, err := one("renewal_owner"); !errors.As(err, &pgErr) || pgErr.Code != "42703" {
		t.Fatalf("the old name still answers after the rename: %v", err)
	}
	if v, err := one("account_manager"); err != nil || v == nil || *v != "Dana" {
		t.Fatalf("account_manager %v (%v) after the rename, want Dana", deref(v), err)
	}

	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	w.sb.ClearRequests()
	w.exec(`update keap.subscriptions_custom set account_manager = 'Eve' where account_id = $1 and keap_id = $2`, w.account, sub)
	w.quiet()
	if calls := w.writes2(); len(calls) != 0 {
		t.Errorf("a subscription's change was sent: %v", calls)
	}
	var msg string
	if err := w.db.QueryRow(ctx, `select error from keapsync.dead_letters where source = 'push' and object_type = 'subscription'`).Scan(&msg); err != nil {
		t.Fatalf("no dead letter for the subscription's change: %v", err)
	}
	if !strings.Contains(msg, "subscriptions") {
		t.Errorf("dead letter %q", msg)
	}
	if got := w.sb.Snapshot().Subscriptions[0]["custom_fields"]; fmt.Sprint(got) != fmt.Sprintf("[map[content:Dana id:%d]]", fieldID) {
		t.Errorf("Keap's custom fields of subscription %d: %v", sub, got)
	}
}
