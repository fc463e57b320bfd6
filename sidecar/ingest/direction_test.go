package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

// A type turned off is neither backfilled, reconciled nor subscribed to, and its deliveries
// fetch nothing; a type synced from Keap only still arrives, but refuses local writes.
func TestSyncDirections(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 10)
	ctx := context.Background()
	if _, err := w.db.Exec(ctx, `update keapsync.sync_directions set direction = 'off' where account_id = $1 and object_type = 'order'`, w.account); err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.contacts`); got == 0 {
		t.Fatal("contacts did not arrive")
	}
	if got := w.count(t, `select count(*) from keap.orders`); got != 0 {
		t.Errorf("%d orders backfilled though orders are off", got)
	}
	if err := w.sweeper.Reconcile(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.orders`); got != 0 {
		t.Errorf("%d orders reconciled though orders are off", got)
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	for _, h := range w.sb.Hooks() {
		if strings.HasPrefix(h.EventKey, "order.") || strings.HasPrefix(h.EventKey, "invoice.") {
			t.Errorf("subscribed to %s though orders are off", h.EventKey)
		}
	}
	if got := w.count(t, `select count(*) from keapsync.hook_subscriptions where account_id = $1 and event_key = 'contact.edit'`, w.account); got != 1 {
		t.Errorf("contact.edit subscriptions: %d", got)
	}
	order := idOf(t, w.sb.Snapshot().Orders[0])
	w.deliver(t, "order.edit", order)
	w.worker.Window = 0
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.orders`); got != 0 {
		t.Error("a delivery for a type that is off was applied")
	}

	// Keap → Postgres only: Keap's edits arrive, a local edit is refused with the reason.
	if _, err := w.db.Exec(ctx, `update keapsync.sync_directions set direction = 'keap_to_postgres' where account_id = $1 and object_type = 'contact'`, w.account); err != nil {
		t.Fatal(err)
	}
	contact := idOf(t, w.sb.Snapshot().Contacts[0])
	if err := w.sb.EditContact(contact, map[string]any{"given_name": "FromKeap"}); err != nil {
		t.Fatal(err)
	}
	w.deliver(t, "contact.edit", contact)
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1 and given_name = 'FromKeap'`, contact); got != 1 {
		t.Error("Keap's edit of a Keap → Postgres contact did not arrive")
	}
	_, err := w.db.Exec(ctx, `update keap.contacts set given_name = 'Local' where keap_id = $1`, contact)
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "25006" || !strings.Contains(pg.Message, "from Keap to Postgres only") {
		t.Fatalf("local edit of a Keap → Postgres contact: %v", err)
	}
	if got := w.count(t, `select count(*) from keapsync.change_history where account_id = $1 and table_name = 'sync_directions'
	    and changed -> 'direction' ->> 'new' in ('off', 'keap_to_postgres')`, w.account); got != 2 {
		t.Errorf("%d direction changes in the history, want 2", got)
	}
}
