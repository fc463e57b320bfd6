package keapclients_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/keapclients"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// accounts makes accounts on tenants; "" makes one with no tenant.
func accounts(t *testing.T, db *pgxpool.Pool, tenants ...string) []string {
	t.Helper()
	var ids []string
	for _, tenant := range tenants {
		var id string
		if err := db.QueryRow(context.Background(), `insert into keapsync.accounts (name, keap_tenant, credential)
values ('A', nullif($1, ''), 'api_key') returning id::text`, tenant).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func registry(t *testing.T, db *pgxpool.Pool, key string) *keapclients.Registry {
	t.Helper()
	r, err := keapclients.New(keapclients.Config{APIURL: "http://127.0.0.1:1/crm/rest", APIKey: key, Logger: testlog.New(t)}, db)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Keap counts per app (or key) and per tenant: every account has its tenant's budget (its id
// standing in for a tenant not known yet), all share the app's, and an account keeps its client.
func TestClientsShareBudgetsAsKeapCounts(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	ids := accounts(t, db, "a.example", "b.example", "")
	r := registry(t, db, "KEY-1")
	ctx := context.Background()
	cl := make([]*keap.Client, len(ids))
	for i, id := range ids {
		var err error
		if cl[i], err = r.For(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if again, _ := r.For(ctx, ids[0]); again != cl[0] {
		t.Error("a second For made a second client")
	}
	if cl[0].TenantBudget() == cl[1].TenantBudget() || cl[1].TenantBudget() == cl[2].TenantBudget() {
		t.Error("accounts on different tenants share a tenant budget")
	}
	for i := range cl {
		if cl[i].AppBudget() != cl[0].AppBudget() {
			t.Errorf("client %d has its own app budget", i)
		}
	}
	if got := cl[0].AppBudget().Key(); got != keap.KeyBudgetKey("KEY-1") {
		t.Errorf("app budget %q, want the key's", got)
	}
	if n := len(r.Budgets()); n != 4 { // the key's and three tenants'
		t.Errorf("%d budgets, want 4", n)
	}
	stats := r.TenantBudgets()
	if len(stats) != 3 || stats[ids[0]].Key != keap.TenantBudgetKey("a.example") || stats[ids[2]].Key != keap.TenantBudgetKey(ids[2]) {
		t.Errorf("tenant budgets per account: %+v", stats)
	}
	if _, err := r.For(ctx, "00000000-0000-0000-0000-000000000000"); err == nil {
		t.Error("a client for an account that does not exist")
	}
}

// Workers asking at once for a new account's client get one client.
func TestConcurrentForMakesOneClient(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	id := accounts(t, db, "c.example")[0]
	r := registry(t, db, "KEY-2")
	got := make([]*keap.Client, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = r.For(context.Background(), id)
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] == nil || got[i] != got[0] {
			t.Fatalf("client %d is %p, client 0 %p", i, got[i], got[0])
		}
	}
}

func members(t *testing.T, db *pgxpool.Pool, key string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `select count(*) from keapsync.rate_budget_members where budget_key = $1`, key).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Start shares the budgets with the other processes on the database, a tenant met later too;
// Stop leaves them at once, so the others speed up without waiting for the TTL.
func TestStartSharesBudgetsAndStopLeaves(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	ids := accounts(t, db, "d.example", "e.example")
	ctx := context.Background()
	first, second := registry(t, db, "KEY-3"), registry(t, db, "KEY-3")
	if _, err := first.For(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*keapclients.Registry{first, second} {
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	defer second.Stop()
	app, d, e := keap.KeyBudgetKey("KEY-3"), keap.TenantBudgetKey("d.example"), keap.TenantBudgetKey("e.example")
	if members(t, db, app) != 2 || members(t, db, d) != 1 {
		t.Fatalf("members: app %d, tenant d %d; want 2 and 1", members(t, db, app), members(t, db, d))
	}
	if got := second.Budgets()[0].Stats().Members; got != 2 {
		t.Errorf("the second process's app budget counts %d members, want 2", got)
	}
	if _, err := second.For(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if members(t, db, e) != 1 {
		t.Error("a tenant met after Start is not shared")
	}
	if err := first.Start(ctx); err == nil {
		t.Error("a second Start")
	}
	first.Stop()
	if members(t, db, app) != 1 || members(t, db, d) != 0 {
		t.Errorf("after Stop: app %d, tenant d %d members; want 1 and 0", members(t, db, app), members(t, db, d))
	}
	if _, err := first.For(ctx, ids[0]); err != nil {
		t.Errorf("a stopped registry's client: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	for name, cfg := range map[string]keapclients.Config{
		"no API URL":             {APIKey: "k"},
		"neither key nor keeper": {APIURL: "http://x"},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
		if r, err := keapclients.New(cfg, db); err == nil || r != nil {
			t.Errorf("%s: New made a registry", name)
		}
	}
	if err := (keapclients.Config{APIURL: "http://x", APIKey: "k"}).Validate(); err != nil {
		t.Error(err)
	}
	if _, err := keapclients.New(keapclients.Config{APIURL: "http://x", APIKey: "k"}, nil); err == nil {
		t.Error("New without a database")
	}
}
