package push_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// world is a sandbox backfilled into a fresh database with one account, and a Keap client.
type world struct {
	t       testing.TB
	sb      *sandbox.Server
	db      *pgxpool.Pool
	account string
	api     *keap.Client
	slot    string
}

var slots atomic.Int64

// Limits far above what a test spends, on both sides: the client follows the limits the
// sandbox reports, and Keap's real ones would make a 2000-row test take minutes.
var roomy = sandbox.Limits{KeyPerSecond: 1e6, KeyPerMinute: 1e8, KeyPerDay: 1e9, TenantPerMinute: 1e8, TenantPerDay: 1e9}

func newWorld(t testing.TB, contacts int) *world {
	return newWorldWith(t, sandbox.Options{Seed: 11, Contacts: contacts, Unthrottled: true, Limits: roomy})
}

func newWorldWith(t testing.TB, opts sandbox.Options) *world {
	return newWorldOn(t, opts, pgtest.Pool(t))
}

// newWorldOn is a world on a given database.
func newWorldOn(t testing.TB, opts sandbox.Options, db *pgxpool.Pool) *world {
	t.Helper()
	ctx := context.Background()
	opts.RequestLogSize = 1 << 20
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	w := &world{t: t, sb: sb, db: db, slot: fmt.Sprintf("push_test_%d_%d", time.Now().UnixNano()%1e9, slots.Add(1))}
	if err := w.db.QueryRow(ctx, `insert into keapsync.accounts (name, keap_tenant, credential) values ('W', $1, 'api_key') returning id`,
		sb.Credentials().Tenant).Scan(&w.account); err != nil {
		t.Fatal(err)
	}
	w.api = w.client(keap.Limits{PerMinute: 1e8, PerDay: 1e9})
	sweeper := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return w.api, nil }, PageSize: 1000}
	if err := sweeper.Backfill(ctx, w.account, []string{"tag", "contact"}); err != nil {
		t.Fatal(err)
	}
	// Dropping the test database needs the slot gone; cleanups run last-registered first, so
	// this runs after the pushers (registered later) have stopped.
	t.Cleanup(func() { _, _ = w.db.Exec(context.Background(), `select pg_drop_replication_slot($1)`, w.slot) })
	return w
}

// config is a pusher configuration with short intervals, for tests.
func (w *world) config(api func(context.Context, string) (push.Keap, error)) push.Config {
	cfg := push.DefaultConfig()
	cfg.DB = w.db
	cfg.Slot, cfg.Publication = w.slot, "keapsync_push"
	if api == nil {
		api = func(context.Context, string) (push.Keap, error) { return w.api, nil }
	}
	cfg.API = api
	cfg.Log = testlog.New(w.t)
	cfg.FlushInterval, cfg.PollInterval, cfg.ReconnectDelay = 10*time.Millisecond, 10*time.Millisecond, 50*time.Millisecond
	cfg.RetryBase, cfg.RetryMax, cfg.MetricsInterval = 20*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	cfg.StatusInterval, cfg.Lease, cfg.Settle = time.Second, 5*time.Second, 20*time.Millisecond
	cfg.MaxSettle = 10 * cfg.Settle
	return cfg
}

// start runs f (a pusher part) until the returned stop is called or the test ends.
func (w *world) start(f func(context.Context) error) (stop func()) {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f(ctx); err != nil {
			w.t.Errorf("pusher: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	w.t.Cleanup(stop)
	return stop
}

func (w *world) pusher(cfg push.Config) *push.Pusher {
	w.t.Helper()
	p, err := push.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) exec(sql string, args ...any) {
	w.t.Helper()
	if _, err := w.db.Exec(context.Background(), sql, args...); err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
}

// hookEdit puts in the inbox what Keap's contact.edit hook for the contact kid would. It returns
// its error, as the tests call it from a Keap client's call inside the pusher's goroutine too.
func (w *world) hookEdit(ctx context.Context, kid int64) error {
	_, err := w.db.Exec(ctx, `insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload)
	                          values ($1, 'contact.edit', 'contact', array[$2::bigint], '{}')`, w.account, kid)
	if err != nil {
		return fmt.Errorf("queue a contact.edit hook for %d: %w", kid, err)
	}
	return nil
}

// drainInbox runs worker until the inbox holds nothing due.
func drainInbox(ctx context.Context, worker *ingest.Worker) error {
	for {
		more, err := worker.RunOnce(ctx)
		if err != nil || !more {
			return err
		}
	}
}

func (w *world) int(sql string, args ...any) int64 {
	w.t.Helper()
	var n int64
	if err := w.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// propagateDeletes makes the account's local deletes reach Keap.
func (w *world) propagateDeletes() {
	w.t.Helper()
	w.exec(`insert into keapsync.settings (account_id, propagate_deletes) values ($1, true)
	        on conflict (account_id) do update set propagate_deletes = true`, w.account)
}

// pushing starts a pusher that propagates deletes, and waits until it has nothing to do.
func (w *world) pushing() {
	w.t.Helper()
	w.propagateDeletes()
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
}

// eventually polls cond until it holds, failing after a bound that only catches a hang: on a
// loaded two-core machine 2000 pushes alone take most of a minute, so a tighter one fails
// tests that are merely slow.
func (w *world) eventually(what string, cond func() bool) {
	w.t.Helper()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	w.t.Fatalf("timed out waiting for %s", what)
}

// sqlStreaming counts the walsenders holding the slot: a pusher streaming it, past its catch-up.
// A slot is also "active" while pg_create_logical_replication_slot makes it, held by the
// creating backend, with a position that may already lie past changes no pusher will queue.
const sqlStreaming = `select count(*) from pg_replication_slots s join pg_stat_replication r on r.pid = s.active_pid
 where s.slot_name = $1 and s.confirmed_flush_lsn >= $2::pg_lsn`

// streaming waits until a pusher streams the slot.
func (w *world) streaming() {
	w.t.Helper()
	w.eventually("a pusher to stream the slot", func() bool { return w.int(sqlStreaming, w.slot, "0/0") == 1 })
}

// enqueued waits until a pusher streams the slot (so it has queued the changes made before the
// slot) and the slot has confirmed everything written so far: every change made before the
// call is in the push queue (or was dropped as Keap's own).
func (w *world) enqueued() {
	w.t.Helper()
	var lsn string
	if err := w.db.QueryRow(context.Background(), `select pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		w.t.Fatal(err)
	}
	w.eventually("the slot to confirm "+lsn, func() bool { return w.int(sqlStreaming, w.slot, lsn) == 1 })
}

// retry asks, through the SQL function the dashboard and CLI use, to retry a parked push, and
// waits until a worker has queued it again: keapsync.retry_dead_letter only marks the letter, and
// a quiet() before the worker's next round would find the queue empty with the push not yet made.
func (w *world) retry(letter int64) {
	w.t.Helper()
	w.exec(`select keapsync.retry_dead_letter($1)`, letter)
	w.eventually("the retried push to be queued", func() bool {
		return w.int(`select count(*) from keapsync.dead_letters where id = $1 and status = 'done'`, letter) == 1
	})
}

// quiet waits until every change made so far is enqueued and pushed.
func (w *world) quiet() {
	w.t.Helper()
	w.enqueued()
	w.eventually("an empty push queue", func() bool { return w.int(`select count(*) from keapsync.push_queue`) == 0 })
}

// writes returns the sandbox's logged write calls (the pushes), as "METHOD path?query".
func (w *world) writes() []string {
	var out []string
	for _, r := range w.sb.Requests() {
		if r.Method != "GET" {
			s := r.Method + " " + r.Path[strings.Index(r.Path, "/v1/"):]
			if r.Query != "" {
				s += "?" + r.Query
			}
			out = append(out, s)
		}
	}
	return out
}

func (w *world) contact(id int64) *keap.Contact {
	w.t.Helper()
	c, err := w.api.GetContact(context.Background(), keap.ID(id), keap.PropJobTitle, keap.PropTagIDs)
	if err != nil {
		w.t.Fatalf("get contact %d: %v", id, err)
	}
	return c
}

// client is a Keap client of the sandbox with the given limits.
func (w *world) client(limits keap.Limits) *keap.Client {
	w.t.Helper()
	tenant, err := keap.NewBudget(keap.BudgetConfig{Key: "tenant", Limits: keap.Limits{PerMinute: 1e8, PerDay: 1e9}})
	if err != nil {
		w.t.Fatal(err)
	}
	cfg := keap.DefaultConfig()
	cfg.APIURL = w.sb.URL() + "/crm/rest"
	cfg.Credentials = keap.APIKey(w.sb.Credentials().PersonalKey)
	cfg.Limits = limits
	cfg.TenantBudget = tenant
	cfg.Retry = keap.RetryPolicy{MaxAttempts: 2, MaxThrottled: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	c, err := keap.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}
