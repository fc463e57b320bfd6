package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// A backfill fetched in ranges at once stores every contact; interrupted, it leaves a checkpoint
// below which every contact is stored, and the next run completes with a total that matches.
func TestSlicedBackfillIsCompleteAndResumesExactly(t *testing.T) {
	t.Parallel()
	for _, pr := range profiles {
		t.Run(pr.name, func(t *testing.T) {
			w := newWorldWith(t, sandbox.Options{Seed: 7, Contacts: 400, Profile: pr.p})
			w.sweeper.ListLimit, w.sweeper.PageSize, w.sweeper.Fetchers, w.sweeper.Appliers = 25, 25, 4, 1
			ctx, cancel := context.WithCancel(context.Background())
			w.sweeper.Progress = &cancelOnWrite{cancel: cancel}
			if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err == nil {
				t.Fatal("the interrupted backfill did not stop")
			}
			total := len(w.sb.Snapshot().Contacts)
			stored := w.count(t, `select count(*) from keap.contacts`)
			if stored == 0 || stored >= total {
				t.Fatalf("the interruption came at %d contacts", stored)
			}
			// Nothing the checkpoint covers is missing.
			var mark *time.Time
			if err := w.db.QueryRow(context.Background(), `select high_water from keapsync.sync_cursors
			    where account_id = $1 and object_type = 'contact' and kind = 'backfill'`, w.account).Scan(&mark); err != nil {
				t.Fatal(err)
			}
			if mark != nil {
				missing := 0
				for _, c := range w.sb.Snapshot().Contacts {
					at, err := time.Parse(time.RFC3339Nano, c["last_updated"].(string))
					if err != nil {
						t.Fatal(err)
					}
					if at.Before(*mark) && w.count(t, `select count(*) from keap.contacts where keap_id = $1`, idOf(t, c)) == 0 {
						missing++
					}
				}
				if missing > 0 {
					t.Fatalf("%d contacts stamped before the checkpoint %v are not stored", missing, *mark)
				}
			}

			w.sb.ClearRequests()
			var progress bytes.Buffer
			w.sweeper.Progress = &progress
			if err := w.sweeper.Backfill(context.Background(), w.account, []string{"contact"}); err != nil {
				t.Fatal(err)
			}
			if got := w.count(t, `select count(*) from keap.contacts`); got != total {
				t.Fatalf("after resuming: %d of %d contacts", got, total)
			}
			if want := fmt.Sprintf("backfill contacts: %d/", total); !strings.Contains(progress.String(), want) {
				t.Fatalf("progress does not say %q:\n%s", want, progress.String())
			}
			if got := w.count(t, `select rows_done from keapsync.sync_cursors where account_id = $1 and object_type = 'contact' and kind = 'backfill'`, w.account); got != total {
				t.Fatalf("the run counted %d rows for %d contacts", got, total)
			}
			ranged := 0
			for _, r := range w.sb.Requests() {
				if strings.Contains(r.Query, "until=") {
					ranged++
				}
			}
			if ranged < 4 {
				t.Fatalf("%d ranged list calls: the backfill was not fetched in ranges", ranged)
			}
		})
	}
}

// A contact edited in Keap while a ranged backfill runs, after its old range was fetched or
// before, is stored as edited: the open-ended last range is walked after all the others.
func TestSlicedBackfillMeetsEditsMadeDuringIt(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 400)
	w.sweeper.ListLimit, w.sweeper.PageSize, w.sweeper.Fetchers = 25, 25, 4
	w.sb.SetFaults(sandbox.Faults{Latency: 20 * time.Millisecond})
	contacts := w.sb.Snapshot().Contacts
	ids := []int64{idOf(t, contacts[0]), idOf(t, contacts[len(contacts)/2])}
	done := make(chan error, 1)
	go func() { done <- w.sweeper.Backfill(context.Background(), w.account, []string{"contact"}) }()
	time.Sleep(60 * time.Millisecond) // some ranges fetched, some not
	for _, id := range ids {
		if err := w.sb.EditContact(id, map[string]any{"job_title": "Edited during backfill"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = any($1) and job_title = 'Edited during backfill'`, ids); got != len(ids) {
		t.Fatalf("%d of %d contacts edited during the backfill are stored as edited", got, len(ids))
	}
}

// A sweep reads a type's custom-field model beside its records, not before them: against a
// Keap that takes its time to answer, the first listing goes out while the model is still being
// answered (it used to wait a whole round trip), and the model is stored all the same.
func TestSweepReadsTheModelBesideTheRecords(t *testing.T) {
	w := newWorld(t, 50)
	w.sb.SetFaults(sandbox.Faults{Latency: 300 * time.Millisecond})
	w.sb.ClearRequests()
	if err := w.sweeper.Backfill(context.Background(), w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	var model, listing *sandbox.RequestRecord
	for _, r := range w.sb.Requests() {
		switch {
		case strings.HasSuffix(r.Path, "/v1/contacts/model") && model == nil:
			model = &r
		case strings.HasSuffix(r.Path, "/v1/contacts") && r.Method == "GET" && listing == nil:
			listing = &r
		}
	}
	if model == nil || listing == nil {
		t.Fatalf("want the model and a listing asked for; got model %v, listing %v", model, listing)
	}
	if answered := model.At.Add(model.Duration); !listing.At.Before(answered) {
		t.Fatalf("the first listing went out %v after the model was answered: the records waited for the model",
			listing.At.Sub(answered))
	}
	if got := w.count(t, `select count(*) from keapsync.custom_fields where account_id = $1 and object_type = 'contact'`, w.account); got == 0 {
		t.Fatal("the contact model was not stored")
	}
}

// A sweep's first page is asked for beside the listing's span and the progress bar's count, so a
// listing that fits in one page costs one round trip: every call at once, and none after them.
// It used to count, then measure both ends, then ask for the page. A backfill from the start
// also asks for the pages after the first (ahead, by offset), which for a small listing come
// back empty: those calls are the price of a large backfill's speed, paid once. A reconcile's
// few changes cost the first page, the span and the count.
func TestSmallSweepIsOneRoundTrip(t *testing.T) {
	w := newWorld(t, 50)
	var progress strings.Builder
	w.sweeper.Progress = &progress
	w.sb.SetFaults(sandbox.Faults{Latency: 300 * time.Millisecond})
	listings := func(sweep func(context.Context, string, []string) error) []sandbox.RequestRecord {
		t.Helper()
		w.sb.ClearRequests()
		if err := sweep(context.Background(), w.account, []string{"contact"}); err != nil {
			t.Fatal(err)
		}
		var out []sandbox.RequestRecord
		for _, r := range w.sb.Requests() {
			if strings.HasSuffix(r.Path, "/v1/contacts") && r.Method == "GET" {
				out = append(out, r)
			}
		}
		for _, r := range out[1:] {
			if answered := out[0].At.Add(out[0].Duration); !r.At.Before(answered) {
				t.Fatalf("a listing went out %v after the first was answered: the sweep waited a round trip", r.At.Sub(answered))
			}
		}
		return out
	}
	if got, want := len(listings(w.sweeper.Backfill)), 3+ingest.DefaultFetchers-1; got != want {
		t.Fatalf("%d contact listings for a backfill of 50 contacts, want the first page, the span, the count and %d pages ahead",
			got, ingest.DefaultFetchers-1)
	}
	if got := w.count(t, `select count(*) from keap.contacts where account_id = $1`, w.account); got != 50 {
		t.Fatalf("%d of 50 contacts stored", got)
	}
	if !strings.Contains(progress.String(), "backfill contacts: 50/50 rows") {
		t.Fatalf("the progress does not show the count:\n%s", progress.String())
	}
	if err := w.sb.EditContact(idOf(t, w.sb.Snapshot().Contacts[0]), map[string]any{"job_title": "Changed"}); err != nil {
		t.Fatal(err)
	}
	if got := len(listings(w.sweeper.Reconcile)); got != 3 {
		t.Fatalf("%d contact listings for a reconcile of one change, want the first page, the span and the count", got)
	}
	if got := w.count(t, `select count(*) from keap.contacts where job_title = 'Changed'`); got != 1 {
		t.Fatal("the reconcile did not store the change")
	}
}

// A backfill leaves the planner statistics of what it filled (keapsync.analyze_synced): without
// them, a push right after it joined the queue to the sync state by scanning the account's whole
// sync state for every queued row, since the planner took an account's rows for a handful.
func TestBackfillLeavesStatistics(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 120)
	if err := w.sweeper.Backfill(context.Background(), w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"keap.contacts", "keapsync.sync_state"} { // names from this list only
		var estimated int
		if err := w.db.QueryRow(context.Background(), `select reltuples::int from pg_class where oid = $1::regclass`,
			table).Scan(&estimated); err != nil {
			t.Fatal(err)
		}
		if rows := w.count(t, `select count(*) from `+table); estimated != rows || rows < 120 {
			t.Errorf("%s: the planner estimates %d rows, it holds %d", table, estimated, rows)
		}
	}
}
