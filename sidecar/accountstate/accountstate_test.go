package accountstate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Each state is worded once, and what may run, what needs a person and what to do follow it.
func TestStatesAreWordedOnce(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 12, 1, 9, 0, 0, 0, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		a                       accountstate.Account
		summary                 string
		canSync, person, health bool
		fix                     string
	}{
		{accountstate.Account{Name: "N", State: accountstate.NotConnected, Reason: "no Keap token stored"},
			"not connected: no Keap token stored", false, true, false, "auth login"},
		{accountstate.Account{Tenant: "r.example", State: accountstate.NeedsReauth, Since: &since},
			"needs re-authorization (since 2026-12-01T08:00:00Z)", false, true, false, "auth login"},
		{accountstate.Account{State: accountstate.Paused}, "paused", false, false, false, "unpauses"},
		{accountstate.Account{State: accountstate.Failing, Reason: "push to Keap: 500", Since: &since},
			"failing: push to Keap: 500 (since 2026-12-01T08:00:00Z)", true, false, false, "deadletters"},
		{accountstate.Account{State: accountstate.CatchingUp, Reason: "backfill of tags"},
			"catching up: backfill of tags (no exchange with Keap yet)", true, false, true, ""},
		{accountstate.Account{State: accountstate.InSync, LastExchange: &since},
			"in sync (last exchange with Keap 2026-12-01T08:00:00Z)", true, false, true, ""},
		{accountstate.Account{State: "new_state"}, "new_state", false, false, false, ""},
	} {
		a := tc.a
		if got := a.Summary(); got != tc.summary {
			t.Errorf("%s: summary %q, want %q", a.State, got, tc.summary)
		}
		if a.State.CanSync() != tc.canSync || a.State.NeedsPerson() != tc.person || a.State.Healthy() != tc.health {
			t.Errorf("%s: can sync %v, needs a person %v, healthy %v", a.State, a.State.CanSync(), a.State.NeedsPerson(), a.State.Healthy())
		}
		if fix := a.Fix(); (tc.fix == "") != (fix == "") || !strings.Contains(fix, tc.fix) {
			t.Errorf("%s: fix %q", a.State, fix)
		}
	}
	if d := (accountstate.Account{Name: "Shop", Tenant: "s.example"}).Display(); d != "s.example" {
		t.Errorf("display %q, want the tenant", d)
	}
	if d := (accountstate.Account{Name: "Shop"}).Display(); d != "Shop" {
		t.Errorf("display %q, want the name", d)
	}
}

// List and Get read keapsync.account_state as it decides.
func TestListAndGetReadTheView(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	var key, oauth string
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, keap_tenant, credential) values ('B key', 'b.example', 'api_key') returning id::text`).Scan(&key); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, credential) values ('A oauth', 'oauth') returning id::text`).Scan(&oauth); err != nil {
		t.Fatal(err)
	}
	all, err := accountstate.List(ctx, db)
	if err != nil || len(all) != 2 {
		t.Fatalf("list: %+v, %v", all, err)
	}
	if all[0].ID != oauth || all[0].State != accountstate.NotConnected || all[0].Tenant != "" {
		t.Errorf("first (by name): %+v, want the OAuth account without a token, not connected", all[0])
	}
	a, ok, err := accountstate.Get(ctx, db, key)
	if err != nil || !ok || a.Tenant != "b.example" || !a.State.CanSync() {
		t.Errorf("get the key's account: %+v %v %v", a, ok, err)
	}
	if _, ok, err := accountstate.Get(ctx, db, "00000000-0000-0000-0000-000000000000"); ok || err != nil {
		t.Errorf("an account that does not exist: ok %v, err %v", ok, err)
	}
	db.Close()
	if _, err := accountstate.List(ctx, db); err == nil || !strings.Contains(err.Error(), "read account states") {
		t.Errorf("a closed pool: %v", err)
	}
}
