package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
)

// A custom-field model Keap cannot serve today: the sweep says so, the records arrive all the
// same, the views by label stay as they were, and the next sweep stores the model.
func TestModelKeapCannotServeStillSweepsTheRecords(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 20)
	ctx := context.Background()
	w.useKeap(&keapWith{Keap: w.api, getModel: func(context.Context, string) (json.RawMessage, error) { return nil, keapDown }})
	err := w.sweeper.Backfill(ctx, w.account, []string{"contact"})
	if !errors.Is(err, keap.ErrServer) || !strings.Contains(err.Error(), "read the contact model") {
		t.Fatalf("Backfill with the model unreadable: %v; want Keap's 503 about the contact model", err)
	}
	if got := w.count(t, `select count(*) from keap.contacts`); got != 20 {
		t.Errorf("%d of 20 contacts arrived", got)
	}
	if got := w.count(t, `select count(*) from keapsync.sync_cursors where kind = 'backfill' and object_type = 'contact' and finished_at is not null`); got != 1 {
		t.Error("the records' sweep did not finish")
	}
	if got := w.count(t, `select count(*) from keapsync.custom_fields where object_type = 'contact'`); got != 0 {
		t.Fatalf("%d contact custom fields stored from a model Keap did not serve", got)
	}
	w.useKeap(w.api)
	if err := w.sweeper.Reconcile(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keapsync.custom_fields where object_type = 'contact'`); got == 0 {
		t.Error("the next sweep did not store the model")
	}
}

// Keap cannot say how long the listing is (its count call fails): the backfill walks it in
// one piece, complete, and its progress says the total is unknown instead of guessing.
func TestBackfillWithoutACountIsCompleteAndSaysSo(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 30)
	ctx := context.Background()
	counts := 0
	w.useKeap(&keapWith{Keap: w.api, listContacts: func(context.Context, keap.ContactQuery) (*keap.Page[keap.Contact], error) {
		counts++
		return nil, keapDown
	}})
	var progress bytes.Buffer
	w.sweeper.Progress, w.sweeper.PageSize, w.sweeper.Fetchers, w.sweeper.ListLimit = &progress, 10, 4, 10
	if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.contacts`); got != 30 {
		t.Errorf("%d of 30 contacts arrived", got)
	}
	if counts == 0 {
		t.Fatal("the backfill never asked for a count")
	}
	if !strings.Contains(progress.String(), "backfill contacts: 30/? rows") {
		t.Errorf("progress:\n%s\nwant the 30 rows done of an unknown total", progress.String())
	}
}

// The database lost at a step of a backfill: the sweep fails saying which, its checkpoint says
// it did not finish (and why, where that could still be written), and the next backfill
// finishes with every record.
func TestBackfillInterruptedByTheDatabaseResumes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, failing, says string }{
		{"reading the checkpoint", "insert into keapsync.sync_cursors", "read checkpoint"},
		{"applying a page", "apply_keap_page", "connection to the database lost"},
		{"recording the finish", "set finished_at = now()", "record checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, 12)
			ctx := context.Background()
			db := newFlakyDB(w.db)
			w.sweeper.DB, w.sweeper.PageSize = db, 5
			db.failOn(tc.failing, 1)
			err := w.sweeper.Backfill(ctx, w.account, []string{"contact"})
			if !errors.Is(err, errLost) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Backfill: %v; want the lost connection, saying %q", err, tc.says)
			}
			if got := w.count(t, `select count(*) from keapsync.sync_cursors where object_type = 'contact' and finished_at is not null`); got != 0 {
				t.Error("the checkpoint says the interrupted backfill finished")
			}
			if tc.failing != "insert into keapsync.sync_cursors" {
				if got := w.count(t, `select count(*) from keapsync.sync_cursors where object_type = 'contact' and last_error like '%lost%'`); got != 1 {
					t.Error("the checkpoint does not say why the backfill failed")
				}
			}
			if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
				t.Fatal(err)
			}
			if got := w.count(t, `select count(*) from keap.contacts`); got != 12 {
				t.Errorf("after the next backfill: %d of 12 contacts", got)
			}
		})
	}
}

// The delete sweep deletes only what Keap confirms gone: an id its listing left out that a GET
// still finds stays, and a listing that fails part-way deletes nothing.
func TestDeleteSweepDeletesOnlyWhatKeapConfirms(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 6)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	hidden := idOf(t, w.sb.Snapshot().Contacts[1])
	listing := func(fail bool) func(ctx context.Context, since time.Time, q keap.ContactQuery) iter.Seq2[keap.Contact, error] {
		return func(ctx context.Context, since time.Time, q keap.ContactQuery) iter.Seq2[keap.Contact, error] {
			return func(yield func(keap.Contact, error) bool) {
				for c, err := range w.api.ContactsSince(ctx, since, q) {
					if err == nil && int64(c.ID) == hidden {
						continue
					}
					if !yield(c, err) {
						return
					}
					if fail {
						yield(keap.Contact{}, keapDown)
						return
					}
				}
			}
		}
	}
	w.useKeap(&keapWith{Keap: w.api, contactsSince: listing(false)})
	if n, err := w.sweeper.SweepDeletes(ctx, w.account, []string{"contact"}); err != nil || n != 0 {
		t.Fatalf("sweep with a contact missing from the listing: %d deletes, %v; want none", n, err)
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1`, hidden); got != 1 {
		t.Error("a contact Keap still has was deleted for missing from a listing")
	}
	w.useKeap(&keapWith{Keap: w.api, contactsSince: listing(true)})
	n, err := w.sweeper.SweepDeletes(ctx, w.account, []string{"contact"})
	if !errors.Is(err, keap.ErrServer) || !strings.Contains(err.Error(), "list contacts") || n != 0 {
		t.Fatalf("sweep over a listing that fails: %d deletes, %v; want none and the listing's error", n, err)
	}
	if got := w.count(t, `select count(*) from keap.contacts`); got != 6 {
		t.Errorf("%d of 6 contacts left after a failed listing", got)
	}
}

// A sweep that cannot reach the database, or has no Keap client for the account, fails at
// once: it asks Keap nothing and changes nothing.
func TestSweepsWithoutDatabaseOrKeapDoNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	dead, err := pgxpool.New(ctx, w.db.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	noClient := errors.New("account has no Keap token")
	for name, s := range map[string]*ingest.Sweeper{
		"database closed": {DB: dead, API: w.sweeper.API},
		"no Keap client":  {DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return nil, noClient }},
	} {
		w.sb.ClearRequests()
		if err := s.Backfill(ctx, w.account, ingest.ObjectTypes); err == nil {
			t.Errorf("%s: Backfill succeeded", name)
		}
		if err := s.Reconcile(ctx, w.account, ingest.ObjectTypes); err == nil {
			t.Errorf("%s: Reconcile succeeded", name)
		}
		if _, err := s.SweepDeletes(ctx, w.account, ingest.ObjectTypes); err == nil {
			t.Errorf("%s: SweepDeletes succeeded", name)
		}
		if n := len(w.sb.Requests()); n != 0 {
			t.Errorf("%s: %d calls to Keap", name, n)
		}
	}
	if got := w.count(t, `select count(*) from keapsync.sync_cursors`); got != 0 {
		t.Errorf("%d checkpoints written by sweeps that could not run", got)
	}
}
