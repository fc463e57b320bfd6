package main

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/dashboard"
	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/doctor"
	"github.com/keapsync/keapsync/sidecar/serve"
)

// stateFixtures: one account per state of keapsync.account_state, each administered by the
// demo user. The token rows hold no real token (nothing here talks to Keap).
const stateFixtures = `
insert into auth.users (id, aud, role, email) values ('` + dashboard.DemoUserID + `', 'authenticated', 'authenticated', 'demo@keapsync.local');
insert into keapsync.accounts (id, name, keap_tenant, needs_reauth, paused) values
  ('00000000-0000-4000-8000-000000000001', 'A not connected', 'nc.example', false, false),
  ('00000000-0000-4000-8000-000000000002', 'B needs reauth', 'nr.example', true, false),
  ('00000000-0000-4000-8000-000000000003', 'C paused', 'pa.example', false, true),
  ('00000000-0000-4000-8000-000000000004', 'D failing', 'fa.example', false, false),
  ('00000000-0000-4000-8000-000000000005', 'E catching up', 'cu.example', false, false),
  ('00000000-0000-4000-8000-000000000006', 'F in sync', 'is.example', false, false);
insert into keapsync.members (account_id, user_id, role) select id, '` + dashboard.DemoUserID + `', 'admin' from keapsync.accounts;
insert into keapsync.oauth_tokens (account_id, key_id, ciphertext, access_expires_at, refresh_expires_at, scope, refreshed_at, last_error, updated_at)
select id, 'k', '\x00', '2026-12-04 00:00Z', '2027-01-15 00:00Z', 'full|' || keap_tenant, '2026-12-03 01:00Z',
       case when needs_reauth then 'invalid_grant: refresh token expired' end, '2026-12-03 02:00Z'
  from keapsync.accounts where keap_tenant <> 'nc.example';
insert into keapsync.sync_cursors (account_id, object_type, kind, rows_done, started_at, finished_at, updated_at)
select id, 'contact', 'backfill', 10, '2026-12-03 03:00Z',
       case when keap_tenant = 'cu.example' then null else timestamptz '2026-12-03 03:10Z' end, '2026-12-03 03:10Z'
  from keapsync.accounts where keap_tenant <> 'nc.example';
insert into keapsync.push_queue (account_id, object_type, local_id, first_enqueued_at, attempts, last_error)
values ('00000000-0000-4000-8000-000000000004', 'contact', 7, '2026-12-03 04:00Z', 3, 'Keap answered 500: try later');
insert into keapsync.sync_cursors (account_id, object_type, kind, started_at, last_error, failed_at, updated_at)
values ('00000000-0000-4000-8000-000000000004', 'tag', 'reconcile', '2026-12-03 05:00Z', 'keap GET /v1/tags: 502', '2026-12-03 05:00Z', '2026-12-03 05:00Z');
`

// The state matrix: for each state, the dashboard (overview and sync health), /readyz, doctor
// and auth status say the same line, the one keapsync.account_state words.
func TestStateMatrixEverySurfaceSaysTheSame(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, stateFixtures); err != nil {
		t.Fatal(err)
	}
	states, err := accountstate.List(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]accountstate.State{
		"nc.example": accountstate.NotConnected, "nr.example": accountstate.NeedsReauth, "pa.example": accountstate.Paused,
		"fa.example": accountstate.Failing, "cu.example": accountstate.CatchingUp, "is.example": accountstate.InSync,
	}
	if len(states) != len(want) {
		t.Fatalf("%d states, want %d: %+v", len(states), len(want), states)
	}
	for _, a := range states {
		if a.State != want[a.Tenant] {
			t.Errorf("%s: state %s, want %s (%s)", a.Tenant, a.State, want[a.Tenant], a.Summary())
		}
	}

	authOut, err := runApp(t, "auth", "status", "--database-url", dbURL)
	if err != nil {
		t.Fatalf("auth status: %v\n%s", err, authOut)
	}
	t.Log("auth status:\n" + authOut)
	findings := map[string]doctor.Finding{}
	for _, f := range doctor.Run(ctx, pool, doctor.Config{}) {
		findings[f.Check] = f
	}
	rec := httptest.NewRecorder()
	(&serve.Server{DB: pool}).Ready().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var ready struct{ Accounts map[string]string }
	if err := json.Unmarshal(rec.Body.Bytes(), &ready); err != nil {
		t.Fatalf("/readyz: %v: %s", err, rec.Body)
	}
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with accounts waiting for a person: %d, want 503", rec.Code)
	}
	dash := signedInDashboard(t, pool)

	for _, a := range states {
		line := a.Summary()
		if a.Reason == "" && a.State != accountstate.InSync || a.State != accountstate.InSync && a.State != accountstate.CatchingUp && a.Since == nil {
			t.Errorf("%s: %q lacks its reason or since when", a.Tenant, line)
		}
		if !strings.Contains(authOut, line) {
			t.Errorf("auth status does not say %q:\n%s", line, authOut)
		}
		if f := findings["account "+a.Display()]; f.Detail != line {
			t.Errorf("doctor says %q, want %q", f.Detail, line)
		}
		if got := ready.Accounts[a.Display()]; got != line {
			t.Errorf("/readyz says %q, want %q", got, line)
		}
		for _, page := range []string{"/", "/health"} {
			body := dash(page + "?account=" + a.ID)
			if !strings.Contains(body, html.EscapeString(line)) || !strings.Contains(body, `data-state="`+string(a.State)+`"`) {
				t.Errorf("dashboard %s of %s does not say %q", page, a.Tenant, line)
			}
			if strings.Contains(body, "Connected") {
				t.Errorf("dashboard %s of %s says Connected", page, a.Tenant)
			}
		}
	}
	// Sync health shows what really ran: a failed run with its error, no backfill as not started.
	if body := dash("/health?account=00000000-0000-4000-8000-000000000004"); !strings.Contains(body, "failed: keap GET /v1/tags: 502") {
		t.Error("sync health does not show the failed reconcile")
	}
	if body := dash("/health?account=00000000-0000-4000-8000-000000000001"); !strings.Contains(body, "Not started") || strings.Contains(body, "In progress") {
		t.Error("sync health of an account never backfilled does not say Not started")
	}
	for _, s := range []string{"Keap answered 500: try later", "invalid_grant: refresh token expired", "backfill of contacts", "no Keap token stored"} {
		if !strings.Contains(authOut, s) {
			t.Errorf("auth status lacks %q", s)
		}
	}
}

// signedInDashboard serves the dashboard in local mode, signs in as the demo user, and returns
// a getter of rendered pages.
func signedInDashboard(t *testing.T, pool *pgxpool.Pool) func(path string) string {
	t.Helper()
	cfg := dashboard.DefaultConfig()
	cfg.Local = true
	d, err := dashboard.New(cfg, pool)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(d.Handler())
	t.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	base, _ := url.Parse(ts.URL)
	const csrf = "state-matrix-csrf-token-state-matrix-csrf"
	jar.SetCookies(base, []*http.Cookie{{Name: "ks_csrf", Value: csrf, Path: "/"}})
	resp, err := client.PostForm(ts.URL+"/signin/local", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return func(path string) string {
		t.Helper()
		resp, err := client.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d\n%.500s", path, resp.StatusCode, b)
		}
		return string(b)
	}
}
