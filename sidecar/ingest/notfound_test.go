package ingest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/ingest"
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
	t.Parallel()
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
	w.worker.PollEvery = time.Millisecond
	if err := w.worker.Run(runCtx); !errors.Is(err, keap.ErrRouteNotFound) {
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
	t.Parallel()
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

// hookCreates counts the create calls the sandbox saw.
func (w *world) hookCreates() int {
	n := 0
	for _, r := range w.sb.Requests() {
		if r.Method == "POST" && r.Path == "/crm/rest/v1/hooks" {
			n++
		}
	}
	return n
}

// checkOnePerKey fails unless Keap holds exactly one subscription per event key keapsync needs
// at the account's URL and keapsync.hook_subscriptions holds exactly those.
func (w *world) checkOnePerKey(t *testing.T) {
	t.Helper()
	per := map[string]int{}
	inKeap := map[string]bool{}
	for _, h := range w.sb.Hooks() {
		per[h.EventKey]++
		inKeap[h.Key] = true
	}
	for _, ev := range ingest.EventKeys {
		if per[ev] != 1 {
			t.Errorf("%s: %d subscriptions in Keap, want 1", ev, per[ev])
		}
	}
	if len(w.sb.Hooks()) != len(ingest.EventKeys) {
		t.Errorf("Keap holds %d subscriptions, want %d", len(w.sb.Hooks()), len(ingest.EventKeys))
	}
	rows, err := w.db.Query(context.Background(), `select hook_key from keapsync.hook_subscriptions where account_id = $1`, w.account)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(inKeap) {
		t.Errorf("hook_subscriptions has %d rows, Keap %d subscriptions", len(keys), len(inKeap))
	}
	for _, k := range keys {
		if !inKeap[k] {
			t.Errorf("hook_subscriptions has %s, which Keap does not hold", k)
		}
	}
}

// One subscription per event key per account, ever: two runs at once (serve's first hourly
// round racing `hooks ensure`, which is how the demo came to hold 26), a third run, copies made
// by hand and a URL Keap stored in another form all end with exactly one, and a run that finds
// everything in place makes no create call.
func TestEnsureHooksOnePerEventKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	w.checkOnePerKey(t)
	if n := w.hookCreates(); n != len(ingest.EventKeys) {
		t.Errorf("%d create calls for %d event keys", n, len(ingest.EventKeys))
	}

	w.sb.ClearRequests()
	rep, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL)
	if err != nil || rep.Created != 0 || rep.Removed != 0 || rep.Verified != len(ingest.EventKeys) {
		t.Fatalf("second run: %+v %v", rep, err)
	}
	if n := w.hookCreates(); n != 0 {
		t.Errorf("second run made %d create calls", n)
	}

	// Copies made outside keapsync's control, one at the URL written differently.
	url, err := ingest.HookURL(ctx, w.db, w.account, w.hooks.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{url, strings.Replace(url, "http://127.0.0.1", "HTTP://127.0.0.1", 1) + "/"} {
		if _, err := w.api.CreateHook(ctx, "contact.edit", u); err != nil {
			t.Fatal(err)
		}
	}
	w.sb.ClearRequests()
	rep, err = ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL)
	if err != nil || rep.Created != 0 || rep.Removed != 2 {
		t.Fatalf("run with copies: %+v %v; want 2 removed, none created", rep, err)
	}
	w.checkOnePerKey(t)
}

// A URL keapsync retired answers 410, which makes Keap deactivate that subscription at once.
func TestRetiredHookURLIsDeactivated(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.Exec(ctx, `update keapsync.hook_endpoints set path_token = 'retired-' || path_token where account_id = $1`, w.account); err != nil {
		t.Fatal(err)
	}
	id := idOf(t, w.sb.Snapshot().Contacts[0])
	if err := w.sb.EditContact(id, map[string]any{"given_name": "After retirement"}); err != nil {
		t.Fatal(err)
	}
	w.sb.FlushHooks()
	if err := w.sb.WaitHooksIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range w.sb.Hooks() {
		if h.EventKey == "contact.edit" && h.Status != "Inactive" {
			t.Errorf("contact.edit subscription is %s after its URL answered 410", h.Status)
		}
	}
}

// Tag hooks arrive whichever id Keap puts in contactGroup.applied/removed (undocumented): the
// contact's, the tag's, or either without an apiUrl to tell them apart.
func TestTagHooksWhicheverIDTheyCarry(t *testing.T) {
	t.Parallel()
	for name, profile := range map[string]sandbox.Profile{
		"contact ids":                {},
		"tag ids":                    {TagHookCarriesTagIDs: true},
		"tag ids without apiUrl":     {TagHookCarriesTagIDs: true, TagHookOmitsAPIURL: true},
		"contact ids without apiUrl": {TagHookOmitsAPIURL: true},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorldWith(t, sandbox.Options{Seed: 7, Contacts: 12, Unthrottled: true, Profile: profile})
			ctx := context.Background()
			if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
				t.Fatal(err)
			}
			if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
				t.Fatal(err)
			}
			const holds = `select count(*) from keap.contact_tags ct join keap.contacts c on c.id = ct.contact_id
			    join keap.tags t on t.id = ct.tag_id where c.keap_id = $1 and t.keap_id = $2`
			// A tag contact 3 lacks, and one contact 4 holds.
			state := w.sb.Snapshot()
			applyTo, removeFrom := idOf(t, state.Contacts[3]), idOf(t, state.Contacts[4])
			var applied, removed int64
			for _, tg := range state.Tags {
				id := idOf(t, tg)
				if applied == 0 && w.count(t, holds, applyTo, id) == 0 {
					applied = id
				}
			}
			for _, tg := range state.Tags {
				if id := idOf(t, tg); removed == 0 && w.count(t, holds, removeFrom, id) == 1 {
					removed = id
				}
			}
			if removed == 0 {
				if err := w.sb.ApplyTag(removeFrom, applied); err != nil {
					t.Fatal(err)
				}
				if err := w.sweeper.Reconcile(ctx, w.account, []string{"contact"}); err != nil {
					t.Fatal(err)
				}
				removed = applied
			}
			if err := w.sb.ApplyTag(applyTo, applied); err != nil {
				t.Fatal(err)
			}
			if err := w.sb.RemoveTag(removeFrom, removed); err != nil {
				t.Fatal(err)
			}
			w.sb.FlushHooks()
			if err := w.sb.WaitHooksIdle(ctx); err != nil {
				t.Fatal(err)
			}
			w.worker.Window = 0
			w.drain(t)
			if w.count(t, holds, applyTo, applied) != 1 {
				t.Errorf("tag %d applied in Keap to %d did not arrive", applied, applyTo)
			}
			if w.count(t, holds, removeFrom, removed) != 0 {
				t.Errorf("tag %d removed in Keap from %d is still here", removed, removeFrom)
			}
		})
	}
}
