package dashboard

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/sandbox"
	"github.com/keapsync/keapsync/supabase"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	accountA   = DemoAccountID
	accountB   = "00000000-0000-4000-8000-0000000000b0"
	adminA     = DemoUserID
	viewerA    = "00000000-0000-4000-8000-000000000bee"
	adminB     = "00000000-0000-4000-8000-00000000b0b0"
	testSecret = "test-secret-test-secret-test-secret-0123"
	testCSRF   = "csrf-token-csrf-token-csrf-token-csrf-toke"
)

// fixtures: the demo seed (account A, its admin), a viewer of A, and account B with its own
// admin, contact, conflict and dead letter, so every test can check that A never sees B.
const sqlFixtures = `
insert into keapsync.accounts (id, name) values ('` + accountB + `', 'Other Company');
insert into keapsync.settings (account_id) values ('` + accountB + `');
insert into auth.users (id, aud, role, email) values
  ('` + viewerA + `', 'authenticated', 'authenticated', 'viewer@example.com'),
  ('` + adminB + `', 'authenticated', 'authenticated', 'b@example.com');
insert into keapsync.members (account_id, user_id, role) values
  ('` + accountA + `', '` + viewerA + `', 'viewer'),
  ('` + accountB + `', '` + adminB + `', 'admin');
select keapsync.apply_keap_records('` + accountB + `', 'contact',
  '[{"id": 1001, "given_name": "Bertha", "family_name": "Secretkeeper",
     "email_addresses": [{"email": "bertha@other.example", "field": "EMAIL1"}],
     "last_updated": "2026-06-01T09:00:00.000Z"}]');
insert into keapsync.dead_letters (account_id, source, object_type, keap_id, error, http_status) values
  ('` + accountA + `', 'push', 'contact', 1002, 'Keap said: email address is invalid', 400),
  ('` + accountB + `', 'push', 'contact', 1001, 'B-only failure', 500);
`

type env struct {
	t    testing.TB
	db   *pgxpool.Pool
	srv  *Server
	ts   *httptest.Server
	now  time.Time
	stop context.CancelFunc
	keap *sandbox.Server // Keap, when the test pushes to it
}

// newEnv starts a dashboard in local mode over a fresh copy of the seeded database.
func newEnv(t testing.TB) *env {
	t.Helper()
	return startEnv(t, seededPool(t))
}

// seededPool clones a database that has the seed and fixtures (loading the seed's 2,300 records
// costs more than cloning a database holding them; pgtest.Seeded does it once per package run).
func seededPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Seeded(t, "dashboard", seedDashboard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// seedDashboard loads the demo seed, the fixtures and a conflict in each account.
func seedDashboard(ctx context.Context, url string) error {
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(ctx, supabase.Seed); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if _, err := db.Exec(ctx, sqlFixtures); err != nil {
		return fmt.Errorf("fixtures: %w", err)
	}
	for _, c := range []struct {
		acct       string
		keap       int64
		local, kap string
	}{{accountA, 1001, "Ada (local)", "Ada (Keap)"}, {accountB, 1001, "Bertha (local)", "Bertha (Keap)"}} {
		if err := SeedDemoConflict(ctx, db, c.acct, c.keap, c.local, c.kap); err != nil {
			return err
		}
	}
	return nil
}

// serveDashboard serves a dashboard made from cfg, which is given the server's own URL.
func serveDashboard(t testing.TB, db *pgxpool.Pool, cfg func(publicURL string) Config) (*Server, *httptest.Server) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	srv, err := New(cfg("http://"+ts.Listener.Addr().String()), db)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	return srv, ts
}

// supabaseEnv is a dashboard in Supabase mode against the Auth server at authURL.
func supabaseEnv(t testing.TB, db *pgxpool.Pool, authURL string) *env {
	srv, ts := serveDashboard(t, db, func(publicURL string) Config {
		return Config{SupabaseURL: authURL, AnonKey: "anon-key", PublicURL: publicURL, Log: testLogger(t)}
	})
	t.Cleanup(ts.Close)
	return &env{t: t, db: db, srv: srv, ts: ts}
}

func startEnv(t testing.TB, db *pgxpool.Pool) *env {
	t.Helper()
	e := &env{t: t, db: db}
	srv, ts := serveDashboard(t, db, func(publicURL string) Config {
		return Config{Local: true, JWTSecret: testSecret, PublicURL: publicURL, Log: testLogger(t)}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Live(ctx); close(done) }()
	t.Cleanup(func() {
		srv.hub.closeAll()
		ts.Close()
		cancel()
		<-done
	})
	e.srv, e.ts, e.stop = srv, ts, cancel
	return e
}

func testLogger(t testing.TB) *slog.Logger { return testlog.Level(t, slog.LevelWarn) }

// client is a browser signed in as one user: session and CSRF cookies, no redirect following.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
}

func (e *env) as(userID string) *client {
	e.t.Helper()
	tok, _, err := e.srv.mint.access(userID, userID+"@example.com")
	if err != nil {
		e.t.Fatal(err)
	}
	return e.withToken(tok)
}

func (e *env) withToken(tok string) *client {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(e.ts.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: cookieAccess, Value: tok}, {Name: cookieCSRF, Value: testCSRF}})
	return &client{t: e.t, base: e.ts.URL, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(b)
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

// post sends a form with the CSRF token unless the form sets csrf itself.
func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", testCSRF)
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func (e *env) scalar(sql string, args ...any) string {
	e.t.Helper()
	var s string
	if err := e.db.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func (e *env) conflictID(account string) string {
	return e.scalar(`select id::text from keapsync.conflicts where account_id = $1 and status = 'open' order by id limit 1`, account)
}
