package push_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

// Custom fields by name, end to end: the backfill stores Keap's model and keap.contacts_custom
// has a column per label; a person renames a field and adds one in Keap; after a reconcile the
// view follows (the old name is gone, the new one has every value), and an update through the
// view reaches Keap as a write to the table does.
func TestCustomFieldsByName(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	ctx := context.Background()

	var seatsID int64
	if err := w.db.QueryRow(ctx, `select keap_id from keapsync.custom_fields
	                               where account_id = $1 and object_type = 'contact' and label = 'Seats'`, w.account).Scan(&seatsID); err != nil {
		t.Fatalf("the backfill stored no model: %v", err)
	}
	if n := w.int(`select count(*) from keapsync.custom_fields where account_id = $1`, w.account); n != int64(len(w.sb.Snapshot().CustomFields)) {
		t.Fatalf("%d fields stored, Keap has %d", n, len(w.sb.Snapshot().CustomFields))
	}
	// Keap's values by contact, from the sandbox.
	keapSeats := map[int64]string{}
	for _, c := range w.sb.Snapshot().Contacts {
		for _, cf := range c["custom_fields"].([]any) {
			if m := cf.(map[string]any); fmt.Sprint(m["id"]) == strconv.FormatInt(seatsID, 10) {
				keapSeats[c["id"].(int64)] = fmt.Sprint(m["content"])
			}
		}
	}
	if len(keapSeats) != 5 {
		t.Fatalf("the sandbox's contacts have %d seat values", len(keapSeats))
	}
	// by reads one named column for every contact, as an analyst would.
	by := func(column string) (map[int64]string, error) {
		rows, err := w.db.Query(ctx, fmt.Sprintf(`select keap_id, %s::text from keap.contacts_custom where account_id = $1`, column), w.account)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[int64]string{}
		for rows.Next() {
			var id int64
			var v *string
			if err := rows.Scan(&id, &v); err != nil {
				return nil, err
			}
			if v != nil {
				out[id] = *v
			}
		}
		return out, rows.Err()
	}
	before, err := by("seats")
	if err != nil {
		t.Fatalf("select seats: %v", err)
	}
	if fmt.Sprint(before) != fmt.Sprint(keapSeats) {
		t.Fatalf("seats by name %v, Keap has %v", before, keapSeats)
	}
	var typ string
	if err := w.db.QueryRow(ctx, `select pg_typeof(renewal_date)::text || ',' || pg_typeof(seats)::text
	                                from keap.contacts_custom limit 1`).Scan(&typ); err != nil || typ != "date,numeric" {
		t.Fatalf("column types %q (%v), want date,numeric", typ, err)
	}

	// In Keap: a rename (no hook, as in Keap) and a new multi-select field.
	if err := w.sb.RenameCustomField(seatsID, "Licensed seats"); err != nil {
		t.Fatal(err)
	}
	tierID, err := w.sb.AddCustomField("Plan tier", "ListBox", "Gold", "Silver")
	if err != nil {
		t.Fatal(err)
	}
	sweeper := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return w.api, nil }}
	if err := sweeper.Reconcile(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	var pgErr *pgconn.PgError
	if _, err := by("seats"); !errors.As(err, &pgErr) || pgErr.Code != "42703" {
		t.Fatalf("the old name still answers after the rename: %v", err)
	}
	after, err := by("licensed_seats")
	if err != nil {
		t.Fatalf("select licensed_seats: %v", err)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("values after the rename %v, before %v", after, before)
	}

	// A write through the view reaches Keap.
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	w.sb.ClearRequests()
	var target int64
	for id := range keapSeats {
		target = max(target, id)
	}
	w.exec(`update keap.contacts_custom set licensed_seats = 42, plan_tier = array['Gold', 'Silver']
	         where account_id = $1 and keap_id = $2`, w.account, target)
	w.quiet()
	if calls := w.writes(); len(calls) != 1 || calls[0] != fmt.Sprintf("PATCH /v1/contacts/%d?update_mask=custom_fields", target) {
		t.Errorf("calls: %v", calls)
	}
	got := map[string]string{}
	for _, c := range w.sb.Snapshot().Contacts {
		if c["id"].(int64) == target {
			for _, cf := range c["custom_fields"].([]any) {
				m := cf.(map[string]any)
				got[fmt.Sprint(m["id"])] = fmt.Sprint(m["content"])
			}
		}
	}
	if got[strconv.FormatInt(seatsID, 10)] != "42" || got[strconv.FormatInt(tierID, 10)] != "Gold,Silver" {
		t.Errorf("Keap's custom fields of contact %d after the write: %v", target, got)
	}
	if v, err := by("licensed_seats"); err != nil || v[target] != "42" {
		t.Errorf("the view after the write: %v (%v)", v[target], err)
	}
}
