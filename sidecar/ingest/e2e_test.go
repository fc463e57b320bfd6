package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// world is a sandbox, a migrated database with one account, a receiver reachable by the
// sandbox, and the ingest parts wired as `serve` wires them.
type world struct {
	sb      *sandbox.Server
	db      *pgxpool.Pool
	account string
	api     *keap.Client
	hooks   *httptest.Server
	worker  *ingest.Worker
	sweeper *ingest.Sweeper
}

func newWorld(t testing.TB, contacts int) *world {
	t.Helper()
	return newWorldWith(t, sandbox.Options{Seed: 7, Contacts: contacts})
}

// newWorldWith is newWorld with the sandbox's options (a profile, say) given.
func newWorldWith(t testing.TB, o sandbox.Options) *world {
	t.Helper()
	ctx := context.Background()
	o.Unthrottled = true
	sb, err := sandbox.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	w := &world{sb: sb, db: pgtest.Pool(t)}
	if err := w.db.QueryRow(ctx, `insert into keapsync.accounts (name, keap_tenant, credential) values ('W', $1, 'api_key') returning id`,
		sb.Credentials().Tenant).Scan(&w.account); err != nil {
		t.Fatal(err)
	}
	cfg := keap.DefaultConfig()
	cfg.APIURL = sb.URL() + "/crm/rest"
	cfg.Credentials = keap.APIKey(sb.Credentials().PersonalKey)
	cfg.Retry = keap.RetryPolicy{MaxAttempts: 2, MaxThrottled: 30, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	w.api = w.client(t, cfg)
	apiOf := func(context.Context, string) (ingest.Keap, error) { return w.api, nil }
	log := testlog.Level(t, slog.LevelWarn)
	w.worker = &ingest.Worker{DB: w.db, API: apiOf, Log: log}
	w.sweeper = &ingest.Sweeper{DB: w.db, API: apiOf, PageSize: 100, Log: log}
	mux := http.NewServeMux()
	mux.Handle("/hooks/", &ingest.Receiver{DB: w.db, Log: log})
	w.hooks = httptest.NewServer(mux)
	t.Cleanup(w.hooks.Close)
	return w
}

// client is a Keap client made from cfg with budgets far above what a test spends. With a
// personal key's own (240 calls a minute) every call waited its turn in the client's limiter,
// and the package's tests spent most of their time there, not in the code under test. The
// sandbox is unthrottled; tests of the budget itself live in package keap.
func (w *world) client(t testing.TB, cfg keap.Config) *keap.Client {
	t.Helper()
	limits := keap.Limits{PerMinute: 1e8, PerDay: 1e9}
	tenant, err := keap.NewBudget(keap.BudgetConfig{Key: "tenant", Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Limits, cfg.TenantBudget = limits, tenant
	api, err := keap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func (w *world) count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := w.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// sweptAway runs the delete sweep of one type and checks that it took exactly the record Keap
// deleted (keapID, whose hook was lost): the row and its sync state.
func (w *world) sweptAway(t *testing.T, objectType, table string, keapID int64) {
	t.Helper()
	if n, err := w.sweeper.SweepDeletes(context.Background(), w.account, []string{objectType}); err != nil || n != 1 {
		t.Errorf("%s delete sweep: %d, %v", objectType, n, err)
	}
	rows := `select count(*) from ` + pgx.Identifier{"keap", table}.Sanitize() + ` where account_id = $1 and keap_id = $2`
	if got := w.count(t, rows, w.account, keapID); got != 0 {
		t.Errorf("the delete sweep left the %s %d deleted in Keap", objectType, keapID)
	}
	if got := w.count(t, `select count(*) from keapsync.sync_state where account_id = $1 and object_type = $2 and keap_id = $3`,
		w.account, objectType, keapID); got != 0 {
		t.Errorf("the sync state of the %s %d deleted in Keap is left behind", objectType, keapID)
	}
}

// drain runs the worker until the inbox is empty.
func (w *world) drain(t *testing.T) {
	t.Helper()
	for i := 0; i < 100; i++ {
		did, err := w.worker.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !did {
			return
		}
	}
	t.Fatal("inbox never drained")
}

func TestBackfillIsCompleteAndResumable(t *testing.T) {
	t.Parallel()
	for _, pr := range profiles {
		t.Run(pr.name, func(t *testing.T) {
			t.Parallel() // each profile has its own world
			backfillIsCompleteAndResumable(t, pr.p)
		})
	}
}

func backfillIsCompleteAndResumable(t *testing.T, p sandbox.Profile) {
	w := newWorldWith(t, sandbox.Options{Seed: 7, Contacts: 250, Profile: p})
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	state := w.sb.Snapshot()
	if got := w.count(t, `select count(*) from keap.contacts where keap_id is not null`); got != len(state.Contacts) {
		t.Errorf("contacts: %d in Postgres, %d in the sandbox", got, len(state.Contacts))
	}
	if got := w.count(t, `select count(*) from keap.orders`); got != len(state.Orders) {
		t.Errorf("orders: %d in Postgres, %d in the sandbox", got, len(state.Orders))
	}
	if got := w.count(t, `select count(*) from keap.subscriptions`); got != len(state.Subscriptions) {
		t.Errorf("subscriptions: %d in Postgres, %d in the sandbox", got, len(state.Subscriptions))
	}
	if got := w.count(t, `select count(*) from keapsync.sync_state where keap_modified is null and object_type = 'contact'`); got != 0 {
		t.Errorf("%d contacts without Keap's version clock", got)
	}
	versions := w.count(t, `select sum(version) from keap.contacts`)
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if again := w.count(t, `select sum(version) from keap.contacts`); again != versions {
		t.Errorf("a second backfill rewrote rows (versions %d -> %d)", versions, again)
	}
	if n := w.count(t, `select count(*) from keapsync.sync_state s join keap.contacts c on c.id = s.local_id
	    where s.object_type = 'contact' and keapsync.pending_push(s.account_id, 'contact', s.local_id) ->> 'op' <> 'none'`); n != 0 {
		t.Errorf("%d backfilled contacts look like local edits waiting for push", n)
	}
}

func TestHooksBringChangesIn(t *testing.T) {
	t.Parallel()
	for _, pr := range profiles {
		t.Run(pr.name, func(t *testing.T) { hooksBringChangesIn(t, pr.p) })
	}
}

func hooksBringChangesIn(t *testing.T, p sandbox.Profile) {
	w := newWorldWith(t, sandbox.Options{Seed: 7, Contacts: 20, Profile: p})
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	rep, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verified != len(ingest.EventKeys) || len(rep.Unverified) != 0 {
		t.Fatalf("hooks: %+v", rep)
	}
	if again, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil || again.Created != 0 {
		t.Fatalf("ensure twice: %+v %v", again, err)
	}

	// A person edits, creates, tags and deletes in Keap.
	state := w.sb.Snapshot()
	edited, gone := idOf(t, state.Contacts[0]), idOf(t, state.Contacts[1])
	if err := w.sb.EditContact(edited, map[string]any{"given_name": "Edited", "job_title": "Hooked"}); err != nil {
		t.Fatal(err)
	}
	created, err := w.sb.CreateContact(map[string]any{"given_name": "New", "email_addresses": []map[string]string{{"email": "new@example.com", "field": "EMAIL1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sb.DeleteContact(gone); err != nil {
		t.Fatal(err)
	}
	tag := idOf(t, state.Tags[0])
	if err := w.sb.ApplyTag(created, tag); err != nil {
		t.Fatal(err)
	}
	w.sb.FlushHooks()
	if err := w.sb.WaitHooksIdle(ctx); err != nil {
		t.Fatal(err)
	}
	w.worker.Window = 0
	w.drain(t)

	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1 and given_name = 'Edited' and job_title = 'Hooked'`, edited); got != 1 {
		t.Error("the edit did not arrive")
		rows, _ := w.db.Query(ctx, `select event_key, object_ids::text, coalesce(last_error,''), processed_at is not null from keapsync.webhook_inbox`)
		for rows.Next() {
			var a, b, c string
			var d bool
			rows.Scan(&a, &b, &c, &d)
			t.Log(a, b, c, d)
		}
		rows.Close()
		var g, j string
		w.db.QueryRow(ctx, `select coalesce(given_name,''), coalesce(job_title,'') from keap.contacts where keap_id = $1`, edited).Scan(&g, &j)
		t.Log(edited, g, j)
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1 and email = 'new@example.com'`, created); got != 1 {
		t.Error("the new contact did not arrive")
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1`, gone); got != 0 {
		t.Error("the deleted contact is still here")
	}
	if got := w.count(t, `select count(*) from keap.contact_tags ct join keap.contacts c on c.id = ct.contact_id
	    join keap.tags t on t.id = ct.tag_id where c.keap_id = $1 and t.keap_id = $2`, created, tag); got != 1 {
		t.Error("the tag applied in Keap is not applied here")
	}
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null`); got != 0 {
		t.Errorf("%d inbox rows left", got)
	}
}

func TestForgedDeleteCannotRemoveData(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	id := idOf(t, w.sb.Snapshot().Contacts[0])
	w.deliver(t, "contact.delete", id) // forged: Keap still has the contact
	w.worker.Window = 0
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1`, id); got != 1 {
		t.Error("a forged delete removed a contact Keap still has")
	}
}

func TestKeapOutageRetriesWithoutLoss(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	ctx := context.Background()
	id := idOf(t, w.sb.Snapshot().Contacts[0])
	w.deliver(t, "contact.edit", id)
	f := w.sb.Faults()
	f.ErrorRate = 1
	w.sb.SetFaults(f)
	w.worker.Window = 0
	if _, err := w.worker.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null and attempts = 1 and last_error is not null`); got != 1 {
		t.Fatalf("after a failed fetch the row should wait for a retry; pending with error: %d", got)
	}
	f.ErrorRate = 0
	w.sb.SetFaults(f)
	if _, err := w.db.Exec(ctx, `update keapsync.webhook_inbox set next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1`, id); got != 1 {
		t.Error("the change was lost after the outage")
	}
}

// idOf reads the id of an object in the sandbox's state dump.
func idOf(t *testing.T, m map[string]any) int64 {
	t.Helper()
	id, err := keapIDOf(m)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// keapIDOf is idOf for code without a test at hand (a benchmark's seeding).
func keapIDOf(m map[string]any) (int64, error) {
	switch v := m["id"].(type) {
	case int64:
		return v, nil
	case int:
		return int64(v), nil
	case float64:
		return int64(v), nil
	case string:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("no id in %v", m)
}

func TestDeleteSweepCatchesUnhookedDeletes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 30)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	gone := idOf(t, w.sb.Snapshot().Contacts[3])
	if err := w.sb.DeleteContact(gone); err != nil { // no hooks registered: nobody tells us
		t.Fatal(err)
	}
	if err := w.sweeper.Reconcile(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1`, gone); got != 1 {
		t.Fatalf("reconcile by modification time cannot see deletes; row count %d", got)
	}
	n, err := w.sweeper.SweepDeletes(ctx, w.account, []string{"contact"})
	if err != nil || n != 1 {
		t.Fatalf("delete sweep applied %d deletes (%v), want 1", n, err)
	}
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1`, gone); got != 0 {
		t.Error("the unhooked delete was not applied")
	}
	if got := w.count(t, `select count(*) from keap.contacts`); got != 29 {
		t.Errorf("%d contacts left, want 29", got)
	}
}

// Hooks arriving twice, out of order, and dropped, with Keap failing some calls: after the
// workers and one reconcile, Postgres has every change.
func TestHooksUnderDeliveryFaultsConverge(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 40)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	w.sb.SetFaults(sandbox.Faults{DuplicateRate: 0.5, DropRate: 0.3, Reorder: true, ErrorRate: 0.2})
	state := w.sb.Snapshot()
	for i := 0; i < 20; i++ {
		id := idOf(t, state.Contacts[i])
		for v := 0; v < 3; v++ {
			if err := w.sb.EditContact(id, map[string]any{"given_name": fmt.Sprintf("v%d-%d", v, id)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.sb.FlushHooks()
	if err := w.sb.WaitHooksIdle(ctx); err != nil {
		t.Fatal(err)
	}
	w.worker.Window = 0
	for i := 0; i < 200; i++ { // retries come due as 5xx answers fail fetches
		did, err := w.worker.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !did {
			if _, err := w.db.Exec(ctx, `update keapsync.webhook_inbox set next_attempt_at = now() where processed_at is null`); err != nil {
				t.Fatal(err)
			}
			if w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null`) == 0 {
				break
			}
		}
	}
	w.sb.SetFaults(sandbox.Faults{})
	if err := w.sweeper.Reconcile(ctx, w.account, []string{"contact"}); err != nil { // the safety net for dropped hooks
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		id := idOf(t, state.Contacts[i])
		if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1 and given_name = $2`, id, fmt.Sprintf("v2-%d", id)); got != 1 {
			t.Errorf("contact %d did not converge to its last edit", id)
		}
	}
	if got := w.count(t, `select count(*) from keapsync.dead_letters`); got != 0 {
		t.Errorf("%d dead letters from transient faults", got)
	}
}

// A worker killed mid-fetch (its context cancelled) leaves its rows due, uncounted, for the next.
func TestKilledWorkerLosesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	ctx := context.Background()
	id := idOf(t, w.sb.Snapshot().Contacts[0])
	w.deliver(t, "contact.add", id)
	w.sb.SetFaults(sandbox.Faults{Latency: 2 * time.Second})
	w.worker.Window = 0
	killed, kill := context.WithTimeout(ctx, 200*time.Millisecond)
	defer kill()
	if _, err := w.worker.RunOnce(killed); err == nil {
		t.Fatal("the interrupted worker reported success")
	}
	if got := w.count(t, `select count(*) from keapsync.webhook_inbox where processed_at is null and attempts = 0`); got != 1 {
		t.Fatalf("after the kill: %d due rows with no attempt counted, want 1", got)
	}
	w.sb.SetFaults(sandbox.Faults{})
	// The killed worker's connection is closed, but its server session may still hold the row's
	// lock for a moment (more on a loaded machine): a worker claiming meanwhile skips the row
	// (SKIP LOCKED), as a worker in serve would until its next round. Drain once it is free.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if w.count(t, `select count(*) from pg_locks l
			where l.database = (select oid from pg_database where datname = current_database())
			  and l.relation = 'keapsync.webhook_inbox'::regclass and l.mode = 'RowShareLock' and l.pid <> pg_backend_pid()`) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed worker's session still holds the inbox")
		}
	}
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1`, id); got != 1 {
		t.Error("the delivery was lost with the killed worker")
	}
}

// deliver posts a hook delivery naming one object to the account's hook URL, as Keap would.
func (w *world) deliver(t testing.TB, eventKey string, id int64) {
	t.Helper()
	url, err := ingest.HookURL(context.Background(), w.db, w.account, w.hooks.URL)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"event_key":"` + eventKey + `","object_keys":[{"id":` + strconv.FormatInt(id, 10) + `}]}`
	resp, err := http.Post(url, "application/json", stringsReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("delivery answered %d", resp.StatusCode)
	}
}
