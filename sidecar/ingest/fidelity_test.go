package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// retire makes the sandbox's gateway answer a route-level 404 for the patterns given (nil
// restores them).
func (w *world) retire(patterns ...string) {
	f := w.sb.Faults()
	f.RetiredRoutes = patterns
	w.sb.SetFaults(f)
}

// A 404 for the route (Keap's get-contact route retired, the listing still served) says nothing
// about the record: the inbox worker stops with the error, deletes nothing and parks nothing;
// once the route answers again, the same delivery applies Keap's real delete.
func TestRouteNotFoundDeletesNothingInIngest(t *testing.T) {
	w := newWorld(t, 5)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	gone := idOf(t, w.sb.Snapshot().Contacts[0])
	if err := w.sb.DeleteContact(gone); err != nil {
		t.Fatal(err)
	}
	w.deliver(t, "contact.delete", gone)
	w.retire("GET /crm/rest/v1/contacts/{id}")
	w.worker.Window = 0
	if _, err := w.worker.RunOnce(ctx); !errors.Is(err, keap.ErrRouteNotFound) {
		t.Fatalf("RunOnce: %v, want keap.ErrRouteNotFound", err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.worker.Run(runCtx, time.Millisecond); !errors.Is(err, keap.ErrRouteNotFound) {
		t.Fatalf("Run: %v, want it to stop with keap.ErrRouteNotFound", err)
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1`, gone); got != 1 {
		t.Fatal("a route-level 404 was applied as a delete")
	}
	if got := w.count(t, `select count(*) from keapsync.dead_letters`); got != 0 {
		t.Fatalf("%d dead letters for a configuration error", got)
	}
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null and attempts = 0`); got != 1 {
		t.Fatalf("the delivery must stay due with no attempt counted; %d such rows", got)
	}
	w.retire()
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1`, gone); got != 0 {
		t.Error("Keap's delete (a record-level 404) was not applied once the route answered")
	}
}

// The delete sweep lists what Keap has, then confirms each missing id with a GET: a route-level
// 404 on that GET stops the sweep and deletes nothing.
func TestRouteNotFoundDeletesNothingInSweep(t *testing.T) {
	w := newWorld(t, 10)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	gone := idOf(t, w.sb.Snapshot().Contacts[2])
	if err := w.sb.DeleteContact(gone); err != nil {
		t.Fatal(err)
	}
	w.retire("GET /crm/rest/v1/contacts/{id}")
	n, err := w.sweeper.SweepDeletes(ctx, w.account, []string{"contact"})
	if !errors.Is(err, keap.ErrRouteNotFound) || n != 0 {
		t.Fatalf("sweep: %d deletes, %v; want 0 and keap.ErrRouteNotFound", n, err)
	}
	if got := w.count(t, `select count(*) from keap.contacts`); got != 10 {
		t.Fatalf("%d contacts left, want all 10", got)
	}
	w.retire()
	if n, err := w.sweeper.SweepDeletes(ctx, w.account, []string{"contact"}); err != nil || n != 1 {
		t.Fatalf("sweep with the route back: %d deletes, %v; want 1", n, err)
	}
}

var _ = sandbox.Profile{}
